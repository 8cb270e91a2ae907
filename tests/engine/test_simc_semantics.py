"""SimulationCraft's semantics, checked against figures derived from SimC's own formulas.

* ``remains`` of an aura or DoT is ``expiry - now`` (SimC's ``buff_t::remains`` /
  ``dot_t::remains``), never capped at the end of the fight;
* RPPM (SimC's ``real_ppm_t``): ``real_ppm = rppm x haste``; chance per attempt
  ``real_ppm x min(t_since_attempt, 3.5 s) / 60``, times the bad-luck protection
  ``max(1, 1 + 3 (t_since_proc / (60 / real_ppm) - 1.5))`` with ``t_since_proc`` capped at
  1000 s; no chance on the first attempt at t = 0.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from wowlab_engine.engine import NumbaEngine

from .conftest import make_config

ENGINE = NumbaEngine()


def dot_config(condition: str) -> dict[str, Any]:
    # A 10 s DoT (no pandemic) recast by `condition`, a filler otherwise; 1 s GCD; 30 s fight.
    return make_config(
        fight={"max_time": 30, "vary_combat_length": 0},
        spells=[
            {"name": "curse", "gcd": 1.0, "gcd_hasted": False, "apply": [{"aura": "curse"}]},
            {"name": "filler", "gcd": 1.0, "gcd_hasted": False, "damage": {"coefficient": 1}},
        ],
        auras=[
            {
                "name": "curse",
                "on": "target",
                "duration": 10,
                "periodic": {"period": 1, "coefficient": 1.0, "can_crit": False},
            }
        ],
        rotation=[{"spell": "curse", "condition": condition}, {"spell": "filler"}],
    )


def casts(config: dict[str, Any], spell: str) -> int:
    prepared = ENGINE.prepare(config)
    result = ENGINE.run_chunk(prepared, seed=1, seed_offset=0, iterations=1)
    return result.metrics[f"ability.{spell}.executes"]


def simc_recasts(condition_below: float, fight_s: int, duration: int) -> list[int]:
    """Cast times of SimC's `remains<condition_below` rule, decisions every second."""
    times, expiry = [], -1
    for now in range(fight_s):
        remains = expiry - now if expiry > now else 0  # SimC: expiry - now, not capped
        if remains < condition_below:
            times.append(now)
            expiry = now + duration
    return times


def test_unguarded_dot_is_not_refreshed_when_its_own_expiry_is_later() -> None:
    # SimC: casts at 0, 8, 16, 24 s; at 28 and 29 s the DoT cast at 24 s still has 6 and
    # 5 s left (it expires at 34 s, after the fight), so it is not recast. A remains capped
    # at the fight's end (30 s) would be 2 and 1 s there, and recast it twice more.
    expected = simc_recasts(3, 30, 10)
    assert expected == [0, 8, 16, 24]
    assert casts(dot_config("dot.curse.remains<3"), "curse") == len(expected)
    assert casts(dot_config("dot.curse.remains<3"), "filler") == 30 - len(expected)


def test_fight_remains_is_what_guards_refreshes_near_the_end() -> None:
    # Guarding with fight_remains drops the recast at 24 s (6 s left in the fight).
    guarded = dot_config("dot.curse.remains<3 & fight_remains>8")
    assert casts(guarded, "curse") == 3


def test_buff_remains_of_a_permanent_aura_is_never_below_the_fight() -> None:
    config = make_config(
        fight={"max_time": 20, "vary_combat_length": 0},
        spells=[
            {"name": "bolt", "gcd": 1.0, "gcd_hasted": False, "damage": {"coefficient": 1}},
            {"name": "other", "gcd": 1.0, "gcd_hasted": False, "damage": {"coefficient": 1}},
        ],
        auras=[{"name": "form", "duration": 0}],
        precombat=["form"],
        rotation=[{"spell": "other", "condition": "buff.form.remains<100"}, {"spell": "bolt"}],
    )
    assert casts(config, "other") == 0


# --- RPPM -------------------------------------------------------------------------------


def rppm_config(haste_pct: float, rppm: float, fight_s: int) -> dict[str, Any]:
    # One hit per second (unhasted 1 s GCD), so attempts are exactly 1 s apart.
    return make_config(
        actor={"primary_stat": 1000, "haste_pct": haste_pct},
        fight={"max_time": fight_s, "vary_combat_length": 0},
        spells=[{"name": "bolt", "gcd": 1.0, "gcd_hasted": False, "damage": {"coefficient": 1}}],
        auras=[{"name": "buff", "duration": 5}],
        procs=[{"name": "trinket", "on": "hit", "rppm": rppm, "apply": {"aura": "buff"}}],
    )


def expected_procs(real_ppm: float, blp_ppm: float, attempts: int, step_s: float) -> float:
    """Expected procs of SimC's real_ppm_t over attempts at 0, step, 2 step, ... (exact DP).

    ``blp_ppm`` is the rate in the bad-luck protection's interval (SimC: ``real_ppm``).
    State k: seconds since the last proc = k x step (the fight start counts as a proc).
    """

    def chance(k: int) -> float:
        if k == 0:
            return 0.0  # the first attempt, at t = 0: no time since the last attempt
        since_attempt = min(step_s, 3.5)
        since_proc = min(k * step_s, 1000.0)
        blp = max(1.0, 1.0 + 3.0 * (since_proc / (60.0 / blp_ppm) - 1.5))
        return min(1.0, real_ppm * since_attempt / 60.0 * blp)

    dist = {0: 1.0}
    total = 0.0
    for _ in range(attempts):
        nxt: dict[int, float] = {}
        for k, p in dist.items():
            c = chance(k)
            total += p * c
            if c > 0:
                nxt[1] = nxt.get(1, 0.0) + p * c
            if c < 1:
                nxt[k + 1] = nxt.get(k + 1, 0.0) + p * (1 - c)
        dist = nxt
    return total


@pytest.mark.parametrize("haste_pct", [25, 50])
def test_rppm_procs_match_simc_real_ppm_within_4_standard_errors(haste_pct: float) -> None:
    rppm, fight_s, iterations = 3.0, 600, 300
    prepared = ENGINE.prepare(rppm_config(haste_pct, rppm, fight_s))
    counts = [
        ENGINE.run_chunk(prepared, seed=5, seed_offset=i, iterations=1).metrics[
            "proc.trinket.count"
        ]
        for i in range(iterations)
    ]
    mean = sum(counts) / iterations
    var = sum((c - mean) ** 2 for c in counts) / (iterations - 1)
    standard_error = math.sqrt(var / iterations)
    real_ppm = rppm * (1 + haste_pct / 100)
    simc = expected_procs(real_ppm, real_ppm, fight_s, 1.0)
    assert abs(mean - simc) < 4 * standard_error, (mean, simc, standard_error)
    # The test tells the formulas apart: bad-luck protection on the unhasted rppm is off
    # by more than 4 standard errors (a few percent fewer procs).
    unhasted_blp = expected_procs(real_ppm, rppm, fight_s, 1.0)
    assert abs(mean - unhasted_blp) > 4 * standard_error, (mean, unhasted_blp)
