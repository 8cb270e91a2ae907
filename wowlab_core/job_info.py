"""What a job ran, said for people: its name, fight, title, and the report's ``job`` section.

A job is named at submit from its config's ``name`` (a compare document's base), else the
example it came from, else the file it was read from; the engine says how long the fight
is and against how many targets (an optional ``describe(prepared)`` method, see
:class:`~wowlab_core.engines.Engine`). All of it is stored on the job, so a list of jobs
names them without loading a config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from wowlab_core.models import SimJob, utcnow

#: Longest stored job name (the column's width).
MAX_NAME = 200


def config_name(config: Any) -> str | None:
    """The ``name`` of a config (of its base, for a compare document), if it has one."""
    if not isinstance(config, Mapping):
        return None
    name = config.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()[:MAX_NAME]
    compare = config.get("compare")
    if isinstance(compare, Mapping):
        return config_name(compare.get("base"))
    return config_name(config.get("base"))


def job_name(config: Any, *, example: str | None = None, source: str | None = None) -> str | None:
    """A job's name: the config's own, else the example's, else ``source`` (a file name)."""
    for candidate in (config_name(config), example, source):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()[:MAX_NAME]
    return None


def fight_setup(engine: Any, prepared: Any) -> dict[str, Any]:
    """``fight_seconds``, ``fight_variation`` and ``targets`` as the engine read the config
    (an engine without ``describe`` or with nothing to say gives an empty dict)."""
    describe = getattr(engine, "describe", None)
    if describe is None:
        return {}
    try:
        said = describe(prepared)
    except Exception:  # a description is a courtesy: never fail a submit over it
        return {}
    if not isinstance(said, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key in ("fight_seconds", "fight_variation"):
        value = said.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number) and number >= 0:
                out[key] = number
    targets = said.get("targets")
    if isinstance(targets, int) and not isinstance(targets, bool) and 0 < targets < 2**31:
        out["targets"] = targets
    return out


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"


def fight_text(job: SimJob) -> str | None:
    """ "300 s ± 20 %, 1 target" (None when the engine did not say)."""
    parts: list[str] = []
    if job.fight_seconds is not None:
        fight = f"{_number(job.fight_seconds)} s"
        if job.fight_variation:
            fight += f" ± {_number(job.fight_variation * 100)} %"
        parts.append(fight)
    if job.targets is not None:
        parts.append(f"{job.targets:,} target" + ("" if job.targets == 1 else "s"))
    return ", ".join(parts) or None


def amount_text(job: SimJob) -> str:
    """ "10,000 iterations", or for a target-error job "target error 0.1 %"."""
    if job.target_error is not None:
        return f"target error {job.target_error:g} %"
    return f"{job.total_iterations:,} iterations"


def job_title(job: SimJob) -> str:
    """ "fire_mage · numba · 10,000 iterations" (a job without a name: "Job 12 · ...")."""
    return " · ".join((job.name or f"Job {job.id}", job.engine, amount_text(job)))


def elapsed_seconds(job: SimJob, *, now: datetime | None = None) -> float:
    """Seconds from submit to the end (or to ``now`` while the job is active)."""
    end = job.finished_at or now or utcnow()
    return max(0.0, round((end - job.created_at).total_seconds(), 1))


def job_section(job: SimJob, *, nodes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The report's ``job`` section: what ran, on how many nodes, for how long.

    It is added when a report is served, not stored with it: the stored report is a pure
    function of the merged result (byte-identical however the job was split), while this
    section says how this particular run went.
    """
    return {
        "id": job.id,
        "name": job.name,
        "title": job_title(job),
        "engine": job.engine,
        "engine_version": job.engine_version,
        "iterations": job.total_iterations,
        "target_error": job.target_error,
        "fight_seconds": job.fight_seconds,
        "fight_variation": job.fight_variation,
        "targets": job.targets,
        "seed": job.seed,
        "nodes": len(nodes),
        "submitted_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "elapsed_seconds": elapsed_seconds(job),
    }


def with_job_section(
    report: Mapping[str, Any], job: SimJob, *, nodes: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """``report`` with its ``job`` section (the stored report is left as it is)."""
    return {**report, "job": job_section(job, nodes=nodes)}


__all__ = [
    "MAX_NAME",
    "amount_text",
    "config_name",
    "elapsed_seconds",
    "fight_setup",
    "fight_text",
    "job_name",
    "job_section",
    "job_title",
    "with_job_section",
]
