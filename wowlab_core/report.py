"""The report of a job: deterministic statistics of its merged result.

Everything in the report is a pure function of the merged :class:`ChunkResult`, the
engine, the config and the seed, so the same job gives byte-identical JSON however it was
chunked. What may vary between runs (wall time, events per second) goes into a separate
top-level ``timing`` section, added by whoever measured it.
"""

from __future__ import annotations

import json
from typing import Any

from wowlab_core.engines import Engine
from wowlab_core.results import ChunkResult, histogram_bins, summarize


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


__all__ = ["build_report", "dumps_report", "timing_section"]
