"""The report's detail against closed forms: per-ability figures, gains by source, APM,
per-target damage, timelines and the sample sequence; and that they merge exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wowlab_core.errors import ConfigInvalid
from wowlab_core.report_view import split_abilities
from wowlab_core.results import ChunkResult, merge_in_seed_order
from wowlab_engine.compiler import DPS_TIMELINE_POINTS, STATE_TIMELINE_POINTS, timeline_steps
from wowlab_engine.engine import NumbaEngine

from .conftest import make_config

ENGINE = NumbaEngine()


def run(config: dict[str, Any], iterations: int, offset: int = 0) -> tuple[Any, ChunkResult]:
    prepared = ENGINE.prepare(config)
    return prepared, ENGINE.run_chunk(prepared, seed=7, seed_offset=offset, iterations=iterations)


def crit_bolt(**changes: Any) -> dict[str, Any]:
    # 1000 damage (2000 on a crit, 30 %) every 1.5 s for 60 s.
    return make_config(
        actor={"primary_stat": 1000, "crit_pct": 30},
        spells=[{"name": "bolt", "gcd": 1.5, "gcd_hasted": False, "damage": {"coefficient": 1}}],
        **changes,
    )


def test_ability_row_hit_crit_min_max_dpe_dpet_and_apm() -> None:
    prepared, result = run(crit_bolt(), 50)
    sections = ENGINE.report_sections(prepared, result)
    (bolt,) = sections["abilities"]
    assert bolt["executes"] == 40  # at 0, 1.5, ..., 58.5 s
    assert (bolt["min_hit"], bolt["max_hit"]) == (1000, 2000)
    assert (bolt["avg_noncrit"], bolt["avg_crit"]) == (1000.0, 2000.0)
    assert bolt["dpe"] == round(bolt["damage"] / 40, 1)
    # DPET: damage over the time the casts took (40 GCDs of 1.5 s = 60 s).
    assert bolt["dpet"] == pytest.approx(bolt["damage"] / 60.0, abs=0.1)
    assert bolt["execute_s"] == 60.0
    assert bolt["crit_pct"] == pytest.approx(30, abs=3)
    assert sections["fight"]["apm"] == 40.0
    assert sections["fight"]["casts"] == 40.0


def test_resource_gains_by_source_and_waste() -> None:
    config = make_config(
        actor={
            "primary_stat": 1000,
            "resources": [{"name": "rage", "max": 100, "start": 0, "regen_per_second": 5}],
        },
        spells=[
            {"name": "bolt", "gcd": 1.0, "gcd_hasted": False, "gain": {"rage": 10}},
            {"name": "slam", "gcd": 1.0, "gcd_hasted": False, "cost": {"rage": 90}},
        ],
        rotation=[{"spell": "slam", "condition": "time>50"}, {"spell": "bolt"}],
    )
    prepared, result = run(config, 3)
    sections = ENGINE.report_sections(prepared, result)
    gains = {row["source"]: row for row in sections["resource_gains"]}
    # Rage is full at 100 after 6.67 s (15 per s: 10 per bolt, 5 regen); from then until
    # the slams (after 50 s) every gain is waste.
    assert set(gains) == {"bolt", "regeneration"}
    total = sections["resources"][0]
    assert gains["bolt"]["gained"] + gains["regeneration"]["gained"] == pytest.approx(
        total["gained"], abs=0.01
    )
    assert gains["bolt"]["overflow"] + gains["regeneration"]["overflow"] == pytest.approx(
        total["overflow"], abs=0.01
    )
    assert gains["bolt"]["overflow"] > 300 and gains["regeneration"]["overflow"] > 150


def test_damage_per_target_on_aoe() -> None:
    config = make_config(
        fight={"max_time": 60, "vary_combat_length": 0, "targets": 3},
        spells=[
            {
                "name": "nova",
                "gcd": 1.5,
                "gcd_hasted": False,
                "damage": {"coefficient": 1, "max_targets": 2, "can_crit": False},
            }
        ],
        rotation=[{"spell": "nova"}],
    )
    prepared, result = run(config, 2)
    sections = ENGINE.report_sections(prepared, result)
    dps = [row["dps"] for row in sections["targets"]]
    assert dps == [pytest.approx(40 * 1000 / 60, abs=0.01)] * 2 + [0.0]
    assert [row["target"] for row in sections["ability_targets"]] == [1, 2]


def test_dps_timeline_sums_to_the_damage_and_follows_the_casts() -> None:
    config = crit_bolt(fight={"max_time": 60, "vary_combat_length": 0.2})
    prepared, result = run(config, 40)
    metrics = result.metrics
    timeline_damage = sum(v for k, v in metrics.items() if k.startswith("timeline.damage."))
    assert timeline_damage == metrics["ability.bolt.damage"]
    fight_ms = sum(v for k, v in metrics.items() if k.startswith("timeline.fight_ms."))
    assert fight_ms == metrics["fight_ms"]
    dps = ENGINE.report_sections(prepared, result)["timelines"]["dps"]
    assert dps["step_s"] == 1.0
    assert 60 * 0.8 <= len(dps["values"]) <= 72
    # Casts at 0, 1.5, 3, ...: seconds 0, 1 | 3, 4 | ... hold one cast each, 2, 5, ... none.
    assert dps["values"][2] == 0.0 and dps["values"][5] == 0.0
    assert dps["values"][0] == pytest.approx(1300, rel=0.2)


def test_resource_and_aura_timelines_are_exact_for_a_fixed_fight() -> None:
    config = make_config(
        actor={
            "primary_stat": 1000,
            "resources": [{"name": "energy", "max": 100, "start": 0, "regen_per_second": 4}],
        },
        fight={"max_time": 60, "vary_combat_length": 0},
        spells=[
            {"name": "bolt", "gcd": 1.0, "gcd_hasted": False, "damage": {"coefficient": 1}},
            {"name": "rush", "gcd": 1.0, "gcd_hasted": False, "apply": [{"aura": "rush"}]},
        ],
        auras=[{"name": "rush", "duration": 10}],
        rotation=[{"spell": "rush", "condition": "time>=20 & time<21"}, {"spell": "bolt"}],
    )
    prepared, result = run(config, 2)
    timelines = ENGINE.report_sections(prepared, result)["timelines"]
    energy = timelines["resources"]["series"]["energy"]
    step = timelines["resources"]["step_s"]
    assert step == 1.0
    assert energy == [min(100.0, 4.0 * t) for t in range(60)]
    rush = timelines["aura_uptime"]["series"]["rush"]
    assert rush == [100.0 if 20 <= t < 30 else 0.0 for t in range(60)]


def test_sample_sequence_is_iteration_zero_only_and_bounded() -> None:
    config = crit_bolt()
    prepared, first = run(config, 3)
    sequence = ENGINE.report_sections(prepared, first)["sample_sequence"]
    assert [row["time_s"] for row in sequence] == [1.5 * k for k in range(40)]
    assert {row["spell"] for row in sequence} == {"bolt"}
    _, later = run(config, 3, offset=3)
    assert "sample_sequence" not in ENGINE.report_sections(prepared, later)
    merged = merge_in_seed_order([later, first])
    assert ENGINE.report_sections(prepared, merged)["sample_sequence"] == sequence
    # A long fight of fast casts records at most the cap.
    fast = make_config(
        fight={"max_time": 1800, "vary_combat_length": 0},
        spells=[{"name": "jab", "gcd": 0.5, "gcd_hasted": False, "damage": {"coefficient": 1}}],
        rotation=[{"spell": "jab"}],
    )
    prepared, result = run(fast, 1)
    assert len(ENGINE.report_sections(prepared, result)["sample_sequence"]) == 500


def test_timelines_are_bounded_for_the_longest_fights() -> None:
    step, points, state_step, state_points = timeline_steps(1_800_000, 900_000)
    assert points <= DPS_TIMELINE_POINTS and state_points <= STATE_TIMELINE_POINTS
    assert state_step % step == 0 and points * step >= 2_700_000
    assert timeline_steps(300_000, 60_000)[:2] == (1000, 360)


@pytest.mark.parametrize("name", ["affliction", "aoe_mage"])
def test_detail_merges_exactly_however_chunked(name: str) -> None:
    prepared = ENGINE.prepare(json.loads(ENGINE.examples()[name].read_text()))
    whole = ENGINE.run_chunk(prepared, seed=3, seed_offset=0, iterations=60)
    parts = [
        ENGINE.run_chunk(prepared, seed=3, seed_offset=o, iterations=n)
        for o, n in ((0, 1), (1, 29), (30, 17), (47, 13))
    ]
    merged = merge_in_seed_order(parts)
    assert merged.to_dict() == whole.to_dict()
    extremes = [k for k in whole.metrics if k.endswith((".min", ".max"))]
    assert extremes  # min/max hits are merged by min/max, not summed
    assert json.dumps(ENGINE.report_sections(prepared, merged), sort_keys=True) == json.dumps(
        ENGINE.report_sections(prepared, whole), sort_keys=True
    )


def largest_config() -> dict[str, Any]:
    """Every limit at its maximum: 64 spells and auras, 32 procs, 4 resources, 20 targets."""
    resources = [{"name": f"r{i}", "max": 100, "regen_per_second": 5} for i in range(4)]
    spells = [
        {
            "name": f"s{i}",
            "gcd": 1.0,
            "gain": {"r0": 1},
            "damage": {"coefficient": 1, "max_targets": 20},
            "apply": [{"aura": f"a{i}"}],
        }
        for i in range(64)
    ]
    auras = [
        {
            "name": f"a{i}",
            "on": "target",
            "duration": 8,
            "periodic": {"period": 2, "coefficient": 1},
        }
        for i in range(64)
    ]
    procs = [
        {"name": f"p{i}", "on": "hit", "chance": 0.01, "gain": {f"r{i % 4}": 1}} for i in range(32)
    ]
    return make_config(
        actor={"primary_stat": 1000, "crit_pct": 20, "resources": resources},
        fight={"max_time": 1800, "vary_combat_length": 0.5, "targets": 20},
        spells=spells,
        auras=auras,
        procs=procs,
        rotation=[{"spell": f"s{i}"} for i in range(64)],
    )


def test_the_largest_config_fits_in_a_node_result_and_compare_checks_its_size() -> None:
    from wowlab_core.compare import compare_document, scale_factor_variants
    from wowlab_core.errors import ConfigInvalid
    from wowlab_core.results import MAX_METRICS
    from wowlab_engine.runner import metric_bound

    prepared, result = run(largest_config(), 1)
    assert len(result.metrics) <= metric_bound(prepared) <= MAX_METRICS
    assert ChunkResult.from_dict(result.to_dict()).to_dict() == result.to_dict()
    many = [{"name": f"v{i}", "stats": {"crit": 10.0 * i}} for i in range(64)]
    with pytest.raises(ConfigInvalid, match=r"64 variants of this config .* \(at most \d+ fit\)"):
        ENGINE.prepare(compare_document(largest_config(), many))
    ENGINE.prepare(compare_document(largest_config(), scale_factor_variants(["crit"], 10)))


def test_rows_are_labelled_and_cooldowns_stand_apart() -> None:
    config = make_config(
        fight={"max_time": 60, "vary_combat_length": 0},
        spells=[
            {"name": "fire_blast", "gcd": 1.5, "gcd_hasted": False, "damage": {"coefficient": 1}},
            {
                "name": "combustion",
                "label": "Combustion (2 min)",
                "off_gcd": True,
                "cooldown": 120,
                "apply": [{"aura": "combustion_buff"}],
            },
        ],
        auras=[{"name": "combustion_buff", "duration": 10}],
        rotation=[{"spell": "combustion"}, {"spell": "fire_blast"}],
    )
    prepared, result = run(config, 2)
    sections = ENGINE.report_sections(prepared, result)
    labels = {row["ability"]: row["label"] for row in sections["abilities"]}
    assert labels == {"fire_blast": "Fire Blast", "combustion": "Combustion (2 min)"}
    assert [a["label"] for a in sections["auras"]] == ["Combustion Buff"]
    damage, utility = split_abilities(sections["abilities"])
    assert [r["ability"] for r in damage] == ["fire_blast"]
    assert [r["ability"] for r in utility] == ["combustion"]
    assert utility[0]["executes"] == 1.0
    # A label is checked like any other field of the config.
    bad = json.loads(json.dumps(config))
    bad["spells"][0]["label"] = "x" * 81
    with pytest.raises(ConfigInvalid, match="label"):
        ENGINE.prepare(bad)
