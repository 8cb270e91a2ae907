"""Benchmark of profile sets: staged culling against running every variant to the target error.

A profile set of 20 variants of the fire_mage example (crit traded for versatility at 1 : 1.3,
while their scale factors are about 1 : 1.7: more crit is better by ~16 DPS per step, 0.08 %,
a spread of 1.5 % from worst to best, like a Top Gear run) is ranked twice on the real engine,
in this process, with one seed (common random numbers):

* culled: :func:`wowlab_core.profilesets.run_profile_set` (stage 1 at 100 iterations, then
  the contenders to 1 %, 0.2 % and the target error);
* every variant to the target error: one compare job of all variants, extended (as SimC
  projects, ``n (error / target)^2``) until every variant's error is below the target.

It prints the variant-iterations, CPU time and winner of each, and whether the culled winner is
the full run's winner (or within 2 paired 95 % errors of it: a sidegrade, as Raidbots calls
it). Usage: ``python benchmarks/profilesets.py [--target-error 0.1] [--variants 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from wowlab_core.compare import (
    BASE,
    CompareSums,
    compare_document,
    paired_difference,
    ranking,
    variant_estimate,
)
from wowlab_core.profilesets import run_profile_set
from wowlab_core.report import build_report
from wowlab_core.results import ChunkResult, merge_in_seed_order
from wowlab_engine.engine import NumbaEngine

ENGINE = NumbaEngine()
SEED = 2024
CHUNK = 2000


def run_job(document: dict[str, Any], iterations: int) -> ChunkResult:
    """A job of ``iterations``, run as chunks of at most CHUNK iterations and merged."""
    prepared = ENGINE.prepare(document)
    parts = [
        ENGINE.run_chunk(
            prepared, seed=SEED, seed_offset=lo, iterations=min(CHUNK, iterations - lo)
        )
        for lo in range(0, iterations, CHUNK)
    ]
    return merge_in_seed_order(parts)


def run_stage(document: dict[str, Any], iterations: int) -> dict[str, Any]:
    merged = run_job(document, iterations)
    return build_report(
        merged=merged,
        seed=SEED,
        config_hash="-",
        engine_name="numba",
        engine=ENGINE,
        prepared=ENGINE.prepare(document),
    )


def variants_of(count: int, exchange: float) -> list[dict[str, Any]]:
    """Crit traded for versatility at 1 : ``exchange``."""
    step = 3000 / max(count - 1, 1)
    return [
        {
            "name": f"p{i:02d}",
            "patch": {
                "actor": {
                    "crit_rating": round(step * i),
                    "versatility_rating": round(exchange * step * (count - 1 - i)),
                }
            },
        }
        for i in range(count)
    ]


def everything_to_target(
    base: dict[str, Any], variants: list[dict[str, Any]], target: float
) -> tuple[CompareSums, int]:
    """All variants in one compare job, extended until every error is below ``target``."""
    names = [BASE, *(v["name"] for v in variants)]
    sums, done, n = CompareSums(), 0, 100
    while True:
        document = compare_document(base, variants, iteration_offset=done)
        sums = sums.merge(CompareSums.from_metrics(run_job(document, n).metrics))
        done += n
        worst = max(variant_estimate(sums, v).error_pct for v in names)
        if worst <= target:
            return sums, done
        needed = int(done * (worst / target) ** 2) + 1
        n = max(needed - done, done // 4, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-error", type=float, default=0.1)
    parser.add_argument("--variants", type=int, default=20)
    parser.add_argument("--exchange", type=float, default=1.3, help="versatility per crit")
    args = parser.parse_args()
    base = json.loads(ENGINE.examples()["fire_mage"].read_text())
    variants = variants_of(args.variants, args.exchange)
    run_job(compare_document(base, variants[:1]), 2)  # compiled before the clocks start

    c0 = time.process_time()
    culled = run_profile_set(
        base, variants, run_stage, target_error=args.target_error, max_iterations=10**7
    )["profilesets"]
    culled_cpu = time.process_time() - c0

    c0 = time.process_time()
    sums, done = everything_to_target(base, variants, args.target_error)
    full_cpu = time.process_time() - c0
    full = ranking(sums, {})
    full_total = done * (len(variants) + 1)

    winner, truth = culled["winner"], full[0]["name"]
    lead = paired_difference(sums, truth, winner)
    verdict = (
        "the same winner"
        if winner == truth
        else "a sidegrade"
        if lead.mean <= 2 * lead.error95
        else "a WRONG winner"
    )
    print(
        f"profile set: {len(variants)} variants + base of fire_mage, target error "
        f"{args.target_error} %, seed {SEED}; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    print(f"{'run':<22} {'variant-iter':>12} {'CPU s':>8} {'winner':>8} {'its DPS':>10}")
    print(
        f"{'staged culling':<22} {culled['variant_iterations']:>12,} {culled_cpu:>8.1f} "
        f"{winner:>8} {culled['ranking'][0]['dps']:>10,.1f}"
    )
    print(
        f"{'all to target error':<22} {full_total:>12,} {full_cpu:>8.1f} "
        f"{truth:>8} {full[0]['dps']:>10,.1f}"
    )
    for stage in culled["stages"]:
        print(
            f"  stage {stage['stage']}: {stage['variants']:>2} variants x "
            f"{stage['iterations']:>6,} iterations (to {stage['target_error']} %)"
        )
    print("top 3 of the full run (paired difference to its best, 95 %):")
    for row in full[:3]:
        print(
            f"  {row['name']}: {row['dps']:,.1f} "
            f"({row['vs_best']:+.1f} +- {row['vs_best_error95']:.1f})"
        )
    print(
        f"profilesets: culling picked {verdict} ({winner} vs {truth}) with "
        f"{culled['variant_iterations']:,} variant-iterations, "
        f"{culled['variant_iterations'] / full_total:.0%} of running all "
        f"{len(variants) + 1} to {args.target_error} % ({full_total:,}); CPU "
        f"{culled_cpu:.1f} s vs {full_cpu:.1f} s"
    )


if __name__ == "__main__":
    main()
