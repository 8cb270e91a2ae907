"""``wowlab sim --scale-factors`` and ``--profileset``: compare jobs on the embedded pool."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wowlab_core.errors import InvalidRequest
from wowlab_core.profilesets import (
    DEFAULT_PROFILESET_ERROR,
    run_profile_set,
    run_scale_factors,
    sweep_variants,
)

if TYPE_CHECKING:
    from wowlab_core.cli.sim import JobRunner


def run_compare(
    parsed: Any,
    runner: JobRunner,
    *,
    stats: str | None,
    delta: float,
    profilesets: list[dict[str, Any]],
    sweep_file: Path | None,
    iterations: int,
    target_error: float | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run stat weights or a profile set; the report and its timing."""
    variants = list(profilesets)
    if sweep_file is not None:
        variants += sweep_variants(sweep_file)
    if stats is not None and variants:
        raise InvalidRequest("give --scale-factors or profile sets, not both", field="profileset")
    runner.compile(parsed)
    started = time.perf_counter()
    spent = 0

    def run_stage(document: dict[str, Any], n: int) -> dict[str, Any]:
        nonlocal spent
        runs = 1 + len(document["compare"]["variants"])
        runner.label = f"stage {len(stages) + 1}: {runs} variants" if variants else "simulating"
        run = runner.run(document, n, target_error=target_error if not variants else None)
        report = run.report or {}
        spent += runs * int(report.get("iterations", n))
        stages.append(n)
        return report

    stages: list[int] = []
    if stats is not None:
        names = [s.strip() for s in stats.split(",") if s.strip()]
        report = run_scale_factors(parsed, names, delta, iterations, run_stage)
    else:
        report = run_profile_set(
            parsed,
            variants,
            run_stage,
            target_error=target_error or DEFAULT_PROFILESET_ERROR,
            max_iterations=runner.max_iterations,
        )
    wall = max(time.perf_counter() - started, 1e-9)
    return report, {
        "wall_seconds": round(wall, 3),
        "jobs": len(stages),
        "iterations_per_second": round(spent / wall, 1),
    }


__all__ = ["run_compare"]
