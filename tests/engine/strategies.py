"""Hypothesis strategies: valid engine configs of every shape the schema allows."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

SCHOOLS = ["physical", "fire", "frost", "shadow"]


def _seconds(low: float, high: float) -> st.SearchStrategy[float]:
    return st.integers(int(low * 10), int(high * 10)).map(lambda x: x / 10)


@st.composite
def conditions(draw: st.DrawFn, atoms: list[str], depth: int = 0) -> str:
    """A condition over ``atoms`` with &, |, ! and parentheses."""
    if depth > 2 or draw(st.booleans()):
        return draw(st.sampled_from(atoms))
    op = draw(st.sampled_from(["&", "|", "!", "()"]))
    left = draw(conditions(atoms, depth + 1))
    if op == "!":
        return f"!{left}"
    if op == "()":
        return f"({left})"
    right = draw(conditions(atoms, depth + 1))
    return f"{left}{op}{right}"


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A config that passes validation (references exist, no trigger cycles)."""
    n_res = draw(st.integers(0, 2))
    resources = [
        {
            "name": f"r{i}",
            "max": draw(st.sampled_from([5, 100, 1000])),
            "regen_per_second": draw(st.sampled_from([0, 5, 20])),
            "regen_hasted": draw(st.booleans()),
        }
        for i in range(n_res)
    ]
    res_names = [r["name"] for r in resources]
    n_spells = draw(st.integers(1, 5))
    n_auras = draw(st.integers(0, 4))
    spell_names = [f"s{i}" for i in range(n_spells)]
    aura_names = [f"a{i}" for i in range(n_auras)]
    on_target = {name: draw(st.booleans()) for name in aura_names}

    auras = []
    for name in aura_names:
        aura: dict[str, Any] = {
            "name": name,
            "on": "target" if on_target[name] else "player",
            "duration": draw(st.sampled_from([0, 2, 6, 12.5])),
            "max_stacks": draw(st.integers(1, 4)),
            "pandemic": draw(st.booleans()),
        }
        if draw(st.booleans()):
            aura["periodic"] = {
                "period": draw(_seconds(0.5, 3)),
                "coefficient": draw(st.sampled_from([0.1, 0.5, 1.3])),
                "hasted": draw(st.booleans()),
                "partial_last_tick": draw(st.booleans()),
                "school": draw(st.sampled_from(SCHOOLS)),
                "can_crit": draw(st.booleans()),
                "variance": draw(st.sampled_from([0, 0.1])),
            }
        effects = []
        for _ in range(draw(st.integers(0, 2))):
            if on_target[name]:
                kind = "damage_pct"
            else:
                kind = draw(
                    st.sampled_from(
                        [
                            "stat_add",
                            "stat_pct",
                            "damage_pct",
                            "haste_pct",
                            "cooldown_rate_pct",
                            "cast_time_pct",
                        ]
                        + (["regen_pct"] if res_names else [])
                    )
                )
            effect: dict[str, Any] = {"type": kind, "value": draw(st.sampled_from([-50, 10, 30]))}
            if kind.startswith("stat"):
                effect["stat"] = draw(
                    st.sampled_from(["primary", "crit", "haste", "mastery", "versatility"])
                )
            if kind == "regen_pct":
                effect["resource"] = draw(st.sampled_from(res_names))
            if kind == "damage_pct" and draw(st.booleans()):
                effect["school"] = draw(st.sampled_from(SCHOOLS))
            if kind in ("damage_pct", "cast_time_pct", "cooldown_rate_pct") and draw(st.booleans()):
                effect["spells"] = [draw(st.sampled_from(spell_names))]
            effects.append(effect)
        aura["effects"] = effects
        auras.append(aura)

    spells = []
    for i, name in enumerate(spell_names):
        spell: dict[str, Any] = {"name": name, "gcd": draw(st.sampled_from([0.5, 1.0, 1.5]))}
        if draw(st.booleans()):
            spell["channel"] = {"duration": draw(_seconds(1, 4)), "ticks": draw(st.integers(1, 5))}
        else:
            spell["cast_time"] = draw(st.sampled_from([0, 0, 1.2, 2.5]))
        if draw(st.booleans()):
            spell["cooldown"] = draw(st.sampled_from([1, 4, 15]))
            spell["charges"] = draw(st.integers(1, 3))
            spell["cooldown_hasted"] = draw(st.booleans())
            spell["off_gcd"] = spell.get("cast_time", 1) == 0 and draw(st.booleans())
        for field in ("cost", "gain"):
            if res_names and draw(st.booleans()):
                spell[field] = {draw(st.sampled_from(res_names)): draw(st.sampled_from([1, 3, 20]))}
        if res_names and draw(st.integers(0, 4)) == 0:
            spell["finisher"] = {"resource": draw(st.sampled_from(res_names))}
        if draw(st.booleans()) or "channel" in spell:
            spell["damage"] = {
                "coefficient": draw(st.sampled_from([0.2, 1.0, 2.5])),
                "variance": draw(st.sampled_from([0, 0.05])),
                "school": draw(st.sampled_from(SCHOOLS)),
                "can_crit": draw(st.booleans()),
                "mastery": draw(st.booleans()),
                "max_targets": draw(st.integers(1, 3)),
            }
        if aura_names:
            spell["apply"] = [
                {"aura": draw(st.sampled_from(aura_names)), "stacks": draw(st.integers(1, 2))}
                for _ in range(draw(st.integers(0, 2)))
            ]
            spell["consume"] = draw(st.lists(st.sampled_from(aura_names), max_size=1))
        later = spell_names[i + 1 :]
        if later:
            spell["trigger"] = draw(st.lists(st.sampled_from(later), max_size=2))
        spells.append(spell)

    procs = []
    for i in range(draw(st.integers(0, 3))):
        on = draw(st.sampled_from(["cast", "hit", "crit", "tick"]))
        proc: dict[str, Any] = {"name": f"p{i}", "on": on}
        periodic = [a["name"] for a in auras if "periodic" in a]
        if on == "tick" and periodic and draw(st.booleans()):
            proc["spells"] = [draw(st.sampled_from(periodic))]
        elif on != "tick" and draw(st.booleans()):
            proc["spells"] = [draw(st.sampled_from(spell_names))]
        if draw(st.booleans()):
            proc["chance"] = draw(st.sampled_from([0.1, 0.5, 1.0]))
        else:
            proc["rppm"] = draw(st.sampled_from([1, 4, 20]))
            proc["rppm_haste"] = draw(st.booleans())
            proc["bad_luck_protection"] = draw(st.booleans())
        proc["icd"] = draw(st.sampled_from([0, 0.5, 3]))
        effect = draw(st.sampled_from(["apply", "trigger", "gain", "reset"]))
        with_cooldown = [s["name"] for s in spells if s.get("cooldown")]
        if effect == "apply" and aura_names:
            proc["apply"] = {"aura": draw(st.sampled_from(aura_names))}
        elif effect == "gain" and res_names:
            proc["gain"] = {draw(st.sampled_from(res_names)): 1}
        elif effect == "reset" and with_cooldown:
            proc["reset_cooldown"] = draw(st.sampled_from(with_cooldown))
        else:
            proc["trigger"] = draw(st.sampled_from(spell_names))
            proc["icd"] = max(proc["icd"], 0.5)  # a cycle breaker
        procs.append(proc)

    atoms = ["time>3", "target.health_pct<35", "active_enemies>1", "fight_remains<5"]
    for name in aura_names:
        kind = "dot" if on_target[name] else "buff"
        atoms += [f"{kind}.{name}.up", f"{kind}.{name}.stack>=2", f"{kind}.{name}.remains<2"]
    for name in spell_names:
        atoms += [f"cooldown.{name}.ready", f"charges.{name}>=2", f"cooldown.{name}.remains<1"]
    for name in res_names:
        atoms += [f"{name}>=3", "resource>20"]
    rotation = [
        {
            "spell": draw(st.sampled_from(spell_names)),
            "condition": draw(st.one_of(st.just(""), conditions(atoms))),
        }
        for _ in range(draw(st.integers(1, 5)))
    ]
    return {
        "name": "generated",
        "actor": {
            "primary_stat": draw(st.sampled_from([100, 1000, 12345])),
            "crit_pct": draw(st.sampled_from([0, 25, 100])),
            "haste_pct": draw(st.sampled_from([0, 20, 75])),
            "mastery_pct": draw(st.sampled_from([0, 30])),
            "versatility_rating": draw(st.sampled_from([0, 780])),
            "resources": resources,
        },
        "fight": {
            "max_time": draw(st.sampled_from([5, 20, 45])),
            "vary_combat_length": draw(st.sampled_from([0, 0.2])),
            "targets": draw(st.integers(1, 3)),
            "armor": draw(st.sampled_from([0, 5000])),
            "damage_taken_pct": draw(st.sampled_from([0, 5])),
        },
        "spells": spells,
        "auras": auras,
        "procs": procs,
        "precombat": draw(st.lists(st.sampled_from(aura_names), max_size=1)) if aura_names else [],
        "rotation": rotation,
    }
