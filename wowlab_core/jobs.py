"""Submitting jobs, planning their chunks, and finishing them with a report.

User-facing operations over the database; the portal's API and ``wowlab sim`` both call
these, with the caller's session (the caller commits).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from wowlab_core.access import usable_nodes
from wowlab_core.errors import InvalidRequest
from wowlab_core.hashing import content_hash
from wowlab_core.models import ChunkStatus, SimChunk, SimConfig, SimJob, User
from wowlab_core.planning import (
    Capacity,
    ChunkPlan,
    check_plan,
    default_chunk_size,
    split_evenly,
    split_into,
)
from wowlab_core.plugins import Hooks
from wowlab_core.report import build_report
from wowlab_core.results import iterations_needed, summarize
from wowlab_core.scheduler import complete_job, insert_chunks, merged_result, touch_config

#: Default upper bound of iterations per job (a self-hoster can raise it).
DEFAULT_MAX_ITERATIONS = 10_000_000
MAX_SEED = 2**63 - 1
NO_NODE_REASON = "waiting: none of the nodes you may use is online"


@dataclass(frozen=True)
class JobLimits:
    """Bounds a submission must respect."""

    max_iterations: int = DEFAULT_MAX_ITERATIONS


DEFAULT_LIMITS = JobLimits()


def _check_int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be a whole number", field=name)
    if not low <= value <= high:
        raise InvalidRequest(
            f"{name} must be between {low:,} and {high:,}, got {value:,}", field=name
        )
    return value


def capacity_for(
    session: Session, *, user: User, hooks: Hooks | None = None, own_nodes_only: bool = False
) -> Capacity:
    """The online nodes ``user`` may use, their workers and measured throughput."""
    nodes = [
        n
        for n in usable_nodes(session, user, hooks=hooks, online_only=True)
        if not own_nodes_only or n.user_id == user.id
    ]
    return Capacity(
        nodes=len(nodes),
        workers=sum(n.max_parallel for n in nodes),
        iterations_per_second=sum((n.iterations_per_second or 0.0) * n.max_parallel for n in nodes),
    )


def store_config(session: Session, *, config: Any, engine_name: str) -> str:
    """Store a config under its content hash (once) and return the hash."""
    digest = content_hash(config)
    existing = session.get(SimConfig, digest)
    if existing is None:
        session.add(SimConfig(hash=digest, config=config, engine=engine_name))
        session.flush()
    else:
        touch_config(session, config_hash=digest)
    return digest


def plan(
    job: SimJob,
    capacity: Capacity,
    *,
    hooks: Hooks | None = None,
    chunk_size: int | None = None,
    chunks: int | None = None,
) -> list[ChunkPlan]:
    """The chunk plan for ``capacity.iterations`` iterations from ``capacity.start``."""
    start, total = capacity.start, capacity.iterations
    plans: list[ChunkPlan] | None = None
    if chunks is not None:
        plans = split_into(start, total, chunks)
    elif chunk_size is not None:
        plans = split_evenly(start, total, chunk_size)
    elif hooks is not None:
        planned = hooks.plan_chunks(job=job, capacity=capacity)
        if planned is not None:
            plans = list(planned)
        else:
            size = hooks.chunk_size(job=job, capacity=capacity)
            if size is not None:
                plans = split_evenly(start, total, int(size))
    if plans is None:
        plans = split_evenly(start, total, default_chunk_size(total, capacity))
    check_plan(plans, start, total)
    return plans


def submit_job(
    session: Session,
    *,
    user: User,
    config: Any,
    iterations: int,
    engine_name: str | None = None,
    seed: int | None = None,
    hooks: Hooks,
    chunk_size: int | None = None,
    chunks: int | None = None,
    target_error: float | None = None,
    own_nodes_only: bool = False,
    limits: JobLimits = DEFAULT_LIMITS,
) -> SimJob:
    """Validate, store and plan a job. Does not commit; nothing is written on an error.

    Raises:
        InvalidRequest: iterations, seed, chunking or target error out of range.
        EngineUnavailable: no such engine.
        ConfigInvalid: the engine rejects the config.
    """
    _check_int(iterations, "iterations", 1, limits.max_iterations)
    if seed is None:
        seed = secrets.randbits(32)
    _check_int(seed, "seed", 0, MAX_SEED)
    if chunk_size is not None:
        _check_int(chunk_size, "chunk_size", 1, limits.max_iterations)
    if chunks is not None:
        _check_int(chunks, "chunks", 1, iterations)
    if target_error is not None and (
        isinstance(target_error, bool)
        or not isinstance(target_error, (int, float))
        or not 0.001 <= target_error <= 50
    ):
        raise InvalidRequest(
            "target_error must be a percentage between 0.001 and 50", field="target_error"
        )
    content_hash(config)  # NaN, Infinity, non-JSON values: refused before any engine sees them
    engine = hooks.engine(engine_name)
    engine.prepare(config)  # raises ConfigInvalid with the JSON path
    digest = store_config(session, config=config, engine_name=engine.name)
    job = SimJob(
        user_id=user.id or 0,
        config_hash=digest,
        engine=engine.name,
        total_iterations=iterations,
        seed=seed,
        target_error=float(target_error) if target_error is not None else None,
        max_iterations=limits.max_iterations,
        own_nodes_only=own_nodes_only,
    )
    session.add(job)
    session.flush()
    capacity = capacity_for(session, user=user, hooks=hooks, own_nodes_only=own_nodes_only)
    plans = plan(
        job,
        Capacity(capacity.nodes, capacity.workers, capacity.iterations_per_second, 0, iterations),
        hooks=hooks,
        chunk_size=chunk_size,
        chunks=chunks,
    )
    insert_chunks(session, job=job, plans=plans)
    if capacity.nodes == 0:
        job.status_reason = NO_NODE_REASON
        session.add(job)
    return job


def finalize_job(
    session: Session,
    *,
    job: SimJob,
    hooks: Hooks,
    prepared_cache: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> bool:
    """Merge a job whose chunks are all done: finish it, or plan another round.

    A ``target_error`` job whose error is still too large gets more chunks (as
    SimulationCraft projects them) until the target or ``max_iterations`` is reached.
    Returns True when the job is now completed.
    """
    merged = merged_result(session, job=job)
    limit = job.max_iterations or DEFAULT_MAX_ITERATIONS
    if job.target_error is not None and job.total_iterations < limit:
        summary = summarize(merged)
        if summary.error_pct > job.target_error:
            needed = iterations_needed(summary, job.target_error)
            extra = min(
                max(needed - job.total_iterations, job.total_iterations // 4, 1),
                limit - job.total_iterations,
            )
            user = session.get(User, job.user_id)
            capacity = (
                capacity_for(session, user=user, hooks=hooks, own_nodes_only=job.own_nodes_only)
                if user is not None
                else Capacity(0, 0, 0.0)
            )
            round_capacity = Capacity(
                capacity.nodes,
                capacity.workers,
                capacity.iterations_per_second,
                job.total_iterations,
                extra,
            )
            insert_chunks(session, job=job, plans=plan(job, round_capacity, hooks=hooks))
            job.total_iterations += extra
            session.add(job)
            return False
    engine = None
    prepared = None
    try:
        engine = hooks.engine(job.engine)
        cache = prepared_cache if prepared_cache is not None else {}
        if job.config_hash not in cache:
            config = session.get(SimConfig, job.config_hash)
            cache[job.config_hash] = engine.prepare(config.config if config else None)
        prepared = cache[job.config_hash]
    except Exception:  # the report still has the statistics without the engine's sections
        engine = None
    report = build_report(
        merged=merged,
        seed=job.seed,
        config_hash=job.config_hash,
        engine_name=job.engine,
        engine=engine,
        prepared=prepared,
        target_error=job.target_error,
    )
    complete_job(session, job=job, report=report, now=now)
    return True


def job_progress(session: Session, *, job: SimJob) -> dict[str, int]:
    """Chunks by status and iterations done, for progress displays."""
    counts = {s.value: 0 for s in ChunkStatus}
    for status in session.exec(select(SimChunk.status).where(col(SimChunk.job_id) == job.id)).all():
        counts[status] = counts.get(status, 0) + 1
    nodes = session.exec(
        select(SimChunk.node_id)
        .where(col(SimChunk.job_id) == job.id, col(SimChunk.status) == ChunkStatus.LEASED.value)
        .distinct()
    ).all()
    return {
        "completed_iterations": job.completed_iterations,
        "total_iterations": job.total_iterations,
        "chunks_total": sum(counts.values()),
        **{f"chunks_{k}": v for k, v in counts.items()},
        "nodes_working": len([n for n in nodes if n is not None]),
    }


def user_jobs(session: Session, *, user: User, limit: int = 100) -> list[SimJob]:
    """A user's newest jobs."""
    return list(
        session.exec(
            select(SimJob)
            .where(col(SimJob.user_id) == user.id)
            .order_by(col(SimJob.id).desc())
            .limit(limit)
        ).all()
    )


__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_ITERATIONS",
    "NO_NODE_REASON",
    "JobLimits",
    "capacity_for",
    "finalize_job",
    "job_progress",
    "plan",
    "store_config",
    "submit_job",
    "user_jobs",
]
