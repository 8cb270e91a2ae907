"""Invalid configs always raise ConfigInvalid naming the JSON path; never crash or hang."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wowlab_core.errors import ConfigInvalid
from wowlab_engine.config import json_schema
from wowlab_engine.engine import NumbaEngine

from .conftest import make_config

ENGINE = NumbaEngine()
FIRE_MAGE = json.loads(ENGINE.examples()["fire_mage"].read_text())


def error_of(config: Any) -> str:
    with pytest.raises(ConfigInvalid) as info:
        ENGINE.prepare(config)
    return str(info.value)


def fire_mage(**edits: Any) -> dict[str, Any]:
    config = copy.deepcopy(FIRE_MAGE)
    for path, value in edits.items():
        node = config
        keys = [int(k) if k.isdigit() else k for k in path.split("__")]
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return config


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            fire_mage(rotation__2__condition="buff.hot_streek.up"),
            "rotation[2].condition: unknown aura 'hot_streek' (did you mean 'hot_streak'?)",
        ),
        (
            fire_mage(rotation__3__condition="dot.combustion.up"),
            "rotation[3].condition: aura 'combustion' is on the player: use buff.combustion",
        ),
        (
            fire_mage(rotation__3__condition="buff.ignite.up"),
            "rotation[3].condition: aura 'ignite' is on the target",
        ),
        (
            fire_mage(rotation__1__condition="cooldown.combustoin.ready"),
            "rotation[1].condition: unknown spell 'combustoin'",
        ),
        (
            fire_mage(rotation__1__condition="time > 5 &"),
            "rotation[1].condition: condition ends too early",
        ),
        (fire_mage(rotation__1__condition="(time>5"), "rotation[1].condition: missing ')'"),
        (
            fire_mage(rotation__1__condition="time>5 $ 1"),
            "rotation[1].condition: unexpected character '$'",
        ),
        (
            fire_mage(rotation__1__condition="mana.max>5"),
            "rotation[1].condition: unknown expression 'mana.max'",
        ),
        (
            fire_mage(rotation__0__spell="time_wrap"),
            "rotation[0].spell: unknown spell 'time_wrap' (did you mean 'time_warp'?)",
        ),
        (fire_mage(spells__0__cost={"rage": 10}), "spells[0].cost.rage: unknown resource 'rage'"),
        (fire_mage(spells__1__consume=["hot"]), "spells[1].consume[0]: unknown aura 'hot'"),
        (fire_mage(procs__0__apply={"aura": "nope"}), "procs[0].apply.aura: unknown aura 'nope'"),
        (
            fire_mage(auras__0__duration=-1),
            "auras[0].duration: Input should be greater than or equal to 0",
        ),
        (
            fire_mage(fight={"max_time": 1e9}),
            "fight.max_time: Input should be less than or equal to 1800",
        ),
        (fire_mage(fight={"targets": 1000}), "fight.targets: Input should be less than or equal"),
        (
            fire_mage(spells__0__damage={"coefficient": float("nan")}),
            "spells[0].damage.coefficient: Input should be a finite number",
        ),
        (fire_mage(spells__0__typo=1), "spells[0].typo: Extra inputs are not permitted"),
        (fire_mage(procs__2__rppm=None), "procs[2]: give exactly one of 'chance' and 'rppm'"),
        (
            fire_mage(auras__3__effects=[{"type": "haste_pct", "value": 5}]),
            "auras[3].effects[0].type: an aura on the target can only have damage_pct effects",
        ),
        (
            {**FIRE_MAGE, "spells": FIRE_MAGE["spells"] * 20},
            "spells: List should have at most 64 items",
        ),
        ({**FIRE_MAGE, "spells": FIRE_MAGE["spells"] * 2}, "spells[6].name: duplicate name"),
        ([], "config: must be a JSON object"),
        ("fireball", "config: must be a JSON object"),
    ],
)
def test_hand_written_invalid_configs(config: Any, expected: str) -> None:
    assert error_of(config).startswith(expected)


def test_cycles_of_triggered_spells_are_rejected() -> None:
    spells = [
        {"name": "a", "trigger": ["b"], "damage": {"coefficient": 1}},
        {"name": "b", "background": True, "trigger": ["c"]},
        {"name": "c", "background": True, "trigger": ["a"]},
    ]
    message = error_of(make_config(spells=spells, rotation=[{"spell": "a"}]))
    assert message.startswith("spells[2].trigger[0]: cycle of triggered spells: a -> b -> c -> a")


def test_cycles_through_procs_are_rejected_unless_an_icd_breaks_them() -> None:
    spells = [
        {"name": "a", "damage": {"coefficient": 1}},
        {"name": "echo", "background": True, "damage": {"coefficient": 1}},
    ]
    proc = {"name": "p", "on": "hit", "chance": 0.5, "trigger": "echo"}
    message = error_of(make_config(spells=spells, procs=[proc], rotation=[{"spell": "a"}]))
    assert message.startswith("procs[0].trigger: cycle of triggered spells: echo -> echo")
    ENGINE.prepare(
        make_config(spells=spells, procs=[{**proc, "icd": 0.5}], rotation=[{"spell": "a"}])
    )
    ENGINE.prepare(
        make_config(spells=spells, procs=[{**proc, "spells": ["a"]}], rotation=[{"spell": "a"}])
    )


def test_a_rotation_spell_that_takes_no_time_needs_a_cooldown() -> None:
    spells = [{"name": "free", "off_gcd": True, "damage": {"coefficient": 1}}]
    message = error_of(make_config(spells=spells, rotation=[{"spell": "free"}]))
    assert message.startswith("rotation[0].spell: 'free' takes no time")


def test_exploding_trigger_trees_are_rejected() -> None:
    spells = [
        {"name": f"s{i}", "background": i > 0, "trigger": [f"s{i + 1}"] * 4} for i in range(8)
    ] + [{"name": "s8", "background": True}]
    message = error_of(make_config(spells=spells, rotation=[{"spell": "s0"}]))
    assert "can set off more than 4096 spells at once" in message


def test_schema_is_json_and_names_the_top_level_sections() -> None:
    schema = json_schema()
    assert {"actor", "fight", "spells", "auras", "procs", "rotation"} <= set(schema["properties"])
    json.dumps(schema)


# --- hypothesis: junk anywhere ----------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += paths(value, (*prefix, i))
    return out


ALL_PATHS = [p for p in paths(FIRE_MAGE) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ALL_PATHS), json_values)
def test_junk_at_any_path_is_rejected_cleanly_or_runs(path: tuple[Any, ...], junk: Any) -> None:
    config = copy.deepcopy(FIRE_MAGE)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = junk
    try:
        prepared = ENGINE.prepare(config)
    except ConfigInvalid as exc:
        assert exc.field and str(exc).startswith(exc.field + ":")
        return
    result = ENGINE.run_chunk(prepared, seed=1, seed_offset=0, iterations=2)
    result.check()


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_junk_configs_are_rejected(junk: Any) -> None:
    with pytest.raises(ConfigInvalid):
        ENGINE.prepare(junk)
