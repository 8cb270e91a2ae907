"""The report of a job: deterministic statistics of its merged result.

Everything in the report is a pure function of the merged :class:`ChunkResult`, the
engine, the config and the seed, so the same job gives byte-identical JSON however it was
chunked. What may vary between runs (wall time, events per second) goes into a separate
top-level ``timing`` section, added by whoever measured it.
"""

from __future__ import annotations

import json
from typing import Any

from wowlab_core.compare import PREFIX as COMPARE_PREFIX
from wowlab_core.engines import Engine
from wowlab_core.results import ChunkResult, histogram_bins, summarize

#: Version of the report's JSON. 2: ``dps`` has p1, p5, p95 and p99, quantiles interpolated
#: within 0.1 % buckets, and ``histogram`` bins without holes. Reports without the field
#: are version 1 (quartiles of 1 % buckets; stored jobs keep them, readers accept both).
REPORT_VERSION = 2


def build_report(
    *,
    merged: ChunkResult,
    seed: int,
    config_hash: str,
    engine_name: str,
    engine: Engine | None = None,
    prepared: Any = None,
    target_error: float | None = None,
) -> dict[str, Any]:
    """The report (without ``timing``) of a merged result."""
    summary = summarize(merged)
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "engine": {"name": engine_name, "version": engine.version if engine else None},
        "config_hash": config_hash,
        "seed": seed,
        "iterations": merged.count,
        "dps": summary.to_dict(),
        "histogram": histogram_bins(merged),
        "events": merged.metrics.get("events", 0),
    }
    if target_error is not None:
        report["target_error"] = target_error
        # The same test the scheduler uses to decide on another round (jobs.finalize_job).
        report["target_error_reached"] = not summary.error_pct > target_error
    # A compare job's exact per-variant sums (see wowlab_core.compare): what the staged
    # runs of a profile set add up, whatever the engine.
    compare_sums = {k: v for k, v in merged.metrics.items() if k.startswith(COMPARE_PREFIX)}
    if compare_sums:
        report["compare_sums"] = dict(sorted(compare_sums.items()))
    if engine is not None and prepared is not None:
        report.update(engine.report_sections(prepared, merged))
    else:
        report["metrics"] = dict(sorted(merged.metrics.items()))
    return report


def timing_section(report: dict[str, Any], *, wall_seconds: float) -> dict[str, Any]:
    """The run-dependent figures: wall time and events (and iterations) per second."""
    wall = max(wall_seconds, 1e-9)
    return {
        "wall_seconds": round(wall_seconds, 3),
        "events_per_second": round(int(report.get("events", 0)) / wall, 1),
        "iterations_per_second": round(int(report.get("iterations", 0)) / wall, 1),
    }


def dumps_report(report: dict[str, Any]) -> str:
    """The report as stable JSON text (sorted keys, two-space indent)."""
    return json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False)


__all__ = ["REPORT_VERSION", "build_report", "dumps_report", "timing_section"]
