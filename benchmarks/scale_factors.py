"""Benchmark of stat weights: how much common random numbers shrink the error of a scale factor.

For every example config, one compare job (the base and +delta of each stat, same seed: the
variants run the same fights) against the same variants run as independent jobs (another
seed): the 95 % error of ``DPS(+delta) - DPS(base)`` both ways, at the same iterations, and
their ratio. A ratio r means independent runs would need r^2 times the iterations for the
same error. Usage: ``python benchmarks/scale_factors.py [--iterations 1000] [--delta 1000]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from typing import Any

from wowlab_core.compare import (
    BASE,
    CompareSums,
    compare_document,
    paired_difference,
    scale_factor_variants,
)
from wowlab_core.results import ChunkResult, summarize
from wowlab_engine.compare import with_stats
from wowlab_engine.engine import NumbaEngine

ENGINE = NumbaEngine()
STATS = ("crit", "haste", "mastery", "versatility", "primary")


def run(document: Any, iterations: int, seed: int) -> ChunkResult:
    return ENGINE.run_chunk(
        ENGINE.prepare(document), seed=seed, seed_offset=0, iterations=iterations
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--delta", type=float, default=1000.0)
    args = parser.parse_args()
    n, delta = args.iterations, args.delta
    print(
        f"scale factors: {n} iterations, +{delta:g} per stat; 95 % error of DPS(+delta) - "
        f"DPS(base), paired (one job) / independent (another seed); load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"{'example':<12}" + "".join(f"{s:>22}" for s in STATS))
    worst = math.inf
    for name, path in sorted(ENGINE.examples().items()):
        base: dict[str, Any] = json.loads(path.read_text())
        variants = scale_factor_variants(STATS, delta)
        sums = CompareSums.from_metrics(run(compare_document(base, variants), n, 1).metrics)
        base_error = summarize(run(base, n, 1)).error95
        cells = []
        for v in variants:
            paired = paired_difference(sums, v["name"], BASE).error95
            alone = summarize(run(with_stats(base, v["stats"]), n, 2)).error95
            independent = math.hypot(base_error, alone)
            ratio = independent / paired if paired else math.inf
            worst = min(worst, ratio)
            cells.append(f"{paired:7.1f} / {independent:6.1f} {ratio:5.0f}x")
        print(f"{name:<12}" + "".join(f"{c:>22}" for c in cells))
    print(f"scale factors: paired errors are at least {worst:.1f}x smaller than independent ones")


if __name__ == "__main__":
    main()
