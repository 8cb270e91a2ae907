"""Compare jobs: common random numbers, scale factors against closed forms, paired against
independent errors, profile sets with staged culling, and exact merging however chunked."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest

from wowlab_core.compare import (
    BASE,
    CompareSums,
    compare_document,
    paired_difference,
    scale_factor_variants,
    variant_estimate,
)
from wowlab_core.errors import ConfigInvalid
from wowlab_core.profilesets import run_profile_set, run_scale_factors
from wowlab_core.report import build_report
from wowlab_core.results import Z95, ChunkResult, merge_in_seed_order, summarize
from wowlab_engine.compare import with_stats
from wowlab_engine.engine import NumbaEngine

from .conftest import make_config

ENGINE = NumbaEngine()
STATS = ["crit", "haste", "mastery", "versatility", "primary"]


def run_job(document: Any, iterations: int, *, seed: int = 11, chunks: int = 1) -> ChunkResult:
    """A job as the pool runs it: chunks of the document, merged in seed order."""
    prepared = ENGINE.prepare(document)
    bounds = [iterations * i // chunks for i in range(chunks + 1)]
    parts = [
        ENGINE.run_chunk(prepared, seed=seed, seed_offset=lo, iterations=hi - lo)
        for lo, hi in itertools.pairwise(bounds)
    ]
    return merge_in_seed_order(parts[::-1])


def stage_runner(seed: int, chunks: int, log: list[int] | None = None) -> Any:
    def run_stage(document: dict[str, Any], iterations: int) -> dict[str, Any]:
        if log is not None:
            log.append(iterations)
        merged = run_job(document, iterations, seed=seed, chunks=chunks)
        prepared = ENGINE.prepare(document)
        return build_report(
            merged=merged,
            seed=seed,
            config_hash="-",
            engine_name="numba",
            engine=ENGINE,
            prepared=prepared,
        )

    return run_stage


def crit_spammer(**actor: float) -> dict[str, Any]:
    # One 1000-damage spell (x2 on a crit, 20 %) every 1.5 s, no haste effect; 60 s +-20 %.
    return make_config(
        actor={"primary_stat": 1000, "crit_pct": 20, **actor},
        fight={"max_time": 60, "vary_combat_length": 0.2},
        spells=[{"name": "bolt", "gcd": 1.5, "gcd_hasted": False, "damage": {"coefficient": 1}}],
    )


def test_compare_job_is_the_base_job_plus_variant_sums_and_merges_exactly() -> None:
    base = json.loads(ENGINE.examples()["rogue"].read_text())
    document = compare_document(base, scale_factor_variants(["crit", "haste"], 500))
    whole = run_job(document, 60)
    assert run_job(document, 60, chunks=7).to_dict() == whole.to_dict()
    plain = run_job(base, 60)
    assert (whole.total, whole.total_sq, whole.histogram) == (
        plain.total,
        plain.total_sq,
        plain.histogram,
    )
    sums = CompareSums.from_metrics(whole.metrics)
    assert sums.variants[BASE] == [60, plain.total, plain.total_sq]
    # The variant is the base with +500 crit rating, run on the same iterations.
    crit = run_job({**base, "actor": {**base["actor"], "crit_rating": 500.0}}, 60)
    assert sums.variants["crit"] == [60, crit.total, crit.total_sq]


def test_stages_continue_the_iterations_and_add_up() -> None:
    base = crit_spammer()
    variants = scale_factor_variants(["crit"], 700)
    one = CompareSums.from_metrics(run_job(compare_document(base, variants), 50).metrics)
    first = CompareSums.from_metrics(run_job(compare_document(base, variants), 20).metrics)
    rest = CompareSums.from_metrics(
        run_job(compare_document(base, variants, iteration_offset=20), 30).metrics
    )
    assert first.merge(rest) == one


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ({"name": "x", "stats": {"luck": 5}}, "compare.variants[0].stats.luck"),
        ({"name": "base", "stats": {"crit": 5}}, "'base' is the base's name"),
        ({"name": "x"}, "give exactly one of 'patch' and 'stats'"),
        (
            {"name": "x", "patch": {"actor": {"crit_pct": "high"}}},
            "compare.variants[0]: actor.crit_pct",
        ),
        ({"name": "x", "patch": {"spells": None}}, "compare.variants[0]: spells: Field required"),
    ],
)
def test_bad_variants_name_their_path(variant: dict[str, Any], message: str) -> None:
    document = {"compare": {"base": crit_spammer(), "variants": [variant]}}
    with pytest.raises(ConfigInvalid) as caught:
        ENGINE.prepare(document)
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def casts_over_seconds() -> float:
    """E[casts / fight seconds]: lengths uniform over [48000, 72000] ms, ceil(L/1500) casts."""
    lengths = range(48_000, 72_001)
    return sum(math.ceil(n / 1500) * 1000 / n for n in lengths) / len(lengths)


def test_scale_factors_of_a_crit_spammer_match_the_closed_form() -> None:
    delta = 1000.0
    report = run_scale_factors(crit_spammer(), STATS, delta, 2000, stage_runner(5, 3))
    rows = {row["stat"]: row for row in report["scale_factors"]["stats"]}
    rate = casts_over_seconds()  # casts per second
    p = 0.20
    expected = {
        # +1 rating = +1/700 % crit: each cast gains 1000 x (2 - 1) x 1/70000 on average.
        "crit": rate * 1000 / 70_000,
        # +1 primary = +1 damage per cast, doubled on crits.
        "primary": rate * (1 + p),
        # +delta rating = +delta/780 % damage, truncated to whole damage per hit.
        "versatility": rate
        * (
            (1 - p) * (math.floor(1000 * (1 + delta / 78_000)) - 1000)
            + p * (math.floor(2000 * (1 + delta / 78_000)) - 2000)
        )
        / delta,
        "haste": 0.0,  # the GCD is not hasted: nothing changes
        "mastery": 0.0,  # no mastery spell
    }
    for stat, value in expected.items():
        row = rows[stat]
        assert abs(row["per_point"] - value) <= row["error95"] + 1e-6, (stat, row, value)
    assert rows["haste"]["error95"] == rows["mastery"]["error95"] == 0.0
    assert rows["primary"]["normalized"] == 1.0
    assert rows["crit"]["normalized"] == pytest.approx(
        expected["crit"] / expected["primary"], abs=rows["crit"]["normalized_error95"]
    )


@pytest.mark.parametrize("example", ["affliction", "rogue"])
def test_paired_seeds_give_errors_at_least_3x_smaller_than_independent_runs(
    example: str,
) -> None:
    base = json.loads(ENGINE.examples()[example].read_text())
    n, delta = 300, 1000.0
    variants = scale_factor_variants(STATS, delta)
    sums = CompareSums.from_metrics(run_job(compare_document(base, variants), n, seed=1).metrics)
    base_alone = summarize(run_job(base, n, seed=1))
    for v in variants:
        paired = paired_difference(sums, v["name"], BASE)
        # The same variant run on its own with another seed: independent random numbers.
        alone = run_job(with_stats(base, v["stats"]), n, seed=2)
        independent = math.hypot(base_alone.error95, summarize(alone).error95)
        assert paired.error95 * 3 <= independent, (v["name"], paired.error95, independent)
        assert abs(variant_estimate(sums, v["name"]).error95 - summarize(alone).error95) < (
            0.25 * independent
        )


def crit_sweep(count: int) -> list[dict[str, Any]]:
    return [
        {"name": f"crit_{i}", "patch": {"actor": {"crit_rating": 150.0 * i}}} for i in range(count)
    ]


def test_profile_set_culls_picks_the_best_and_is_identical_however_chunked() -> None:
    base = crit_spammer(crit_pct=10)
    log: list[int] = []
    result = run_profile_set(
        base,
        crit_sweep(12),
        stage_runner(9, 1, log),
        target_error=0.3,
        max_iterations=100_000,
    )
    section = result["profilesets"]
    assert section["winner"] == "crit_11"  # the most crit wins a crit spammer
    # Stage 1 runs the base and 12 variants; then the base and the few contenders.
    assert section["stages"][0]["variants"] == 13 and section["stages"][-1]["variants"] <= 4
    finalists = [r for r in section["ranking"] if r["culled_after_stage"] is None]
    assert all(r["error_pct"] <= 0.3 for r in finalists)
    # Every variant to the target error, as independent profile runs would need.
    total = sum(log)
    assert section["variant_iterations"] < 13 * total
    again = run_profile_set(
        base,
        crit_sweep(12),
        stage_runner(9, 5),
        target_error=0.3,
        max_iterations=100_000,
    )
    assert json.dumps(again, sort_keys=True) == json.dumps(result, sort_keys=True)


def test_paired_difference_error_is_the_z95_standard_error_of_the_differences() -> None:
    sums = CompareSums(
        variants={"a": [4, 10, 30], "b": [4, 6, 14]},
        pairs={("a", "b"): [4, 4, 6]},  # differences 1, 1, 1, 1 + ... : sum 4, sum sq 6
    )
    d = paired_difference(sums, "a", "b", scale=1)
    # differences with sum 4 and sum of squares 6 over 4: mean 1, sample variance 2/3.
    assert d.mean == 1.0
    assert d.error95 == pytest.approx(Z95 * math.sqrt((2 / 3) / 4))
    assert paired_difference(sums, "b", "a", scale=1).mean == -1.0
