"""Submitting jobs, planning their chunks, and finishing them with a report.

User-facing operations over the database; the portal's API and ``wowlab sim`` both call
these, with the caller's session (the caller commits).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from wowlab_core.access import usable_nodes
from wowlab_core.cost import (
    DEFAULT_MAX_SECONDS_PER_ITERATION,
    IterationCost,
    check_cost,
    measure_cost,
)
from wowlab_core.engines import Engine, is_local_only
from wowlab_core.errors import ConfigTooExpensive, InvalidRequest, QuotaExceeded, ResultInvalid
from wowlab_core.hashing import content_hash
from wowlab_core.job_info import fight_setup, job_name
from wowlab_core.models import Node, SimConfig, SimJob, User
from wowlab_core.planning import (
    TARGET_CHUNK_SECONDS,
    Capacity,
    ChunkPlan,
    check_plan,
    default_chunk_size,
    iteration_rate,
    max_job_iterations,
    split_evenly,
    split_into,
)
from wowlab_core.plugins import Hooks
from wowlab_core.progress import job_progress
from wowlab_core.report import build_report
from wowlab_core.results import iterations_needed, summarize
from wowlab_core.scheduler import (
    ACTIVE_JOB_STATUSES,
    complete_job,
    fail_job,
    insert_chunks,
    merged_result,
    touch_config,
)

log = logging.getLogger(__name__)

#: Default upper bound of iterations per job (a self-hoster can raise it).
DEFAULT_MAX_ITERATIONS = 10_000_000
MAX_SEED = 2**63 - 1
#: A local job's measurement gives up (cost unknown) after one iteration this long.
LOCAL_MEASURE_SECONDS = 5.0
NO_NODE_REASON = "waiting: none of the nodes you may use is online"


#: Default bound of a user's jobs that are pending or running at once.
DEFAULT_MAX_ACTIVE_JOBS = 20
#: Default bound of the iterations a user has queued (not yet done) over all active jobs.
DEFAULT_MAX_QUEUED_ITERATIONS = 50_000_000


@dataclass(frozen=True)
class JobLimits:
    """Bounds a submission must respect (per job, and per user over their active jobs).

    Attributes:
        max_iterations: iterations per job.
        max_seconds_per_iteration: the most one iteration of a config may take on the
            submitting machine (measured at submit) for the pool to run it.
        max_active_jobs: a user's jobs pending or running at once.
        max_queued_iterations: iterations a user has queued over their active jobs.
    """

    max_iterations: int = DEFAULT_MAX_ITERATIONS
    max_seconds_per_iteration: float = DEFAULT_MAX_SECONDS_PER_ITERATION
    max_active_jobs: int = DEFAULT_MAX_ACTIVE_JOBS
    max_queued_iterations: int = DEFAULT_MAX_QUEUED_ITERATIONS


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
    session: Session,
    *,
    user: User,
    hooks: Hooks | None = None,
    own_nodes_only: bool = False,
    allow_public: bool = False,
) -> Capacity:
    """The online nodes ``user`` may use, their workers and measured throughput."""
    nodes = [
        n
        for n in usable_nodes(
            session, user, hooks=hooks, online_only=True, include_public=allow_public
        )
        if not own_nodes_only or n.user_id == user.id
    ]
    return Capacity(
        nodes=len(nodes),
        workers=sum(n.max_parallel for n in nodes),
        iterations_per_second=sum((n.iterations_per_second or 0.0) * n.max_parallel for n in nodes),
        worker_events_per_second=_worker_events_per_second(nodes),
    )


def _worker_events_per_second(nodes: list[Node]) -> float:
    """Mean events/s of one worker over the nodes that have been measured (0 if none)."""
    measured = [n for n in nodes if n.events_per_second and n.events_per_second > 0]
    workers = sum(n.max_parallel for n in measured)
    if workers <= 0:
        return 0.0
    return sum((n.events_per_second or 0.0) * n.max_parallel for n in measured) / workers


def with_capacity(job: SimJob, capacity: Capacity, *, start: int, iterations: int) -> Capacity:
    """``capacity`` for planning ``iterations`` of ``job`` from ``start``."""
    return Capacity(
        capacity.nodes,
        capacity.workers,
        capacity.iterations_per_second,
        start,
        iterations,
        capacity.worker_events_per_second,
    )


def config_cost(
    session: Session,
    *,
    digest: str,
    engine: Engine,
    prepared: Any,
    limits: JobLimits,
    local: bool = False,
) -> IterationCost | None:
    """The cost of one iteration of a config: measured at its first submit on this engine,
    then reused from its ``sim_configs`` row. None if the engine failed to run it here (the
    nodes will report that error; the job is planned without a cost), or, for a ``local``
    job, if one iteration takes longer than ``LOCAL_MEASURE_SECONDS``.

    Raises:
        ConfigTooExpensive: not one iteration finished within the limit.
    """
    stored = session.get(SimConfig, digest)
    if (
        stored is not None
        and stored.engine == engine.name
        and stored.seconds_per_iteration is not None
        and stored.seconds_per_iteration > 0
    ):
        return IterationCost(
            seconds=stored.seconds_per_iteration,
            events=stored.events_per_iteration,
            iterations=0,
        )
    limit = limits.max_seconds_per_iteration
    try:
        return measure_cost(
            engine, prepared, limit_seconds=max(limit, LOCAL_MEASURE_SECONDS) if local else limit
        )
    except ConfigTooExpensive:
        if local:
            return None
        raise
    except Exception as exc:
        log.warning("could not measure the cost of config %s: %s", digest[:12], exc)
        return None


def store_config(
    session: Session, *, config: Any, engine_name: str, cost: IterationCost | None = None
) -> str:
    """Store a config under its content hash (once) and return the hash.

    ``cost`` (measured on ``engine_name``) is kept with it unless it has one already.
    """
    digest = content_hash(config)
    existing = session.get(SimConfig, digest)
    if existing is None:
        session.add(
            SimConfig(
                hash=digest,
                config=config,
                engine=engine_name,
                seconds_per_iteration=cost.seconds if cost else None,
                events_per_iteration=cost.events if cost else None,
            )
        )
        session.flush()
    else:
        touch_config(session, config_hash=digest)
        unmeasured = not existing.seconds_per_iteration
        if cost is not None and existing.engine == engine_name and unmeasured:
            existing.seconds_per_iteration = cost.seconds
            existing.events_per_iteration = cost.events
            session.add(existing)
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
        size = default_chunk_size(
            total,
            capacity,
            events_per_iteration=job.events_per_iteration,
            seconds_per_iteration=job.seconds_per_iteration,
        )
        plans = split_evenly(start, total, size)
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
    allow_public: bool = False,
    limits: JobLimits = DEFAULT_LIMITS,
    local: bool = False,
    name: str | None = None,
) -> SimJob:
    """Validate, measure, store and plan a job. Does not commit; nothing is written on an
    error.

    The config's cost per iteration is measured (briefly, see :mod:`wowlab_core.cost`) or
    taken from an earlier submit, and chunks are sized by it. ``local`` is for a pool on
    the submitter's own machine (``wowlab sim``): it may use a local-only engine and
    configs of any cost. ``name`` is the job's name when the config has none of its own
    (the example's or the file's, see :func:`wowlab_core.job_info.job_name`).

    By default the job runs on the user's own nodes and those shared with them by name,
    as a friend or through a guild; ``allow_public`` adds nodes shared with everyone.

    Raises:
        InvalidRequest: iterations, seed, chunking or target error out of range; a
            local-only engine for the pool; more iterations than the pool takes of a
            config this expensive.
        QuotaExceeded: the user has too many active jobs or queued iterations.
        EngineUnavailable: no such engine.
        ConfigInvalid: the engine rejects the config.
        ConfigTooExpensive: one iteration takes longer than the limit.
    """
    _check_int(iterations, "iterations", 1, limits.max_iterations)
    check_user_quota(session, user=user, iterations=iterations, limits=limits)
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
    digest = content_hash(config)  # NaN, Infinity, non-JSON values: refused before any engine
    engine = hooks.engine(engine_name)
    if is_local_only(engine) and not local:
        raise InvalidRequest(
            f"the {engine.name} engine runs only on your own machine (wowlab sim --engine "
            f"{engine.name}), not on the pool's nodes; choose another engine",
            field="engine",
        )
    prepared = engine.prepare(config)  # raises ConfigInvalid with the JSON path
    cost = config_cost(
        session, digest=digest, engine=engine, prepared=prepared, limits=limits, local=local
    )
    if cost is not None and not local:
        check_cost(cost, limit_seconds=limits.max_seconds_per_iteration)
    store_config(session, config=config, engine_name=engine.name, cost=cost)
    job = SimJob(
        user_id=user.id or 0,
        config_hash=digest,
        engine=engine.name,
        total_iterations=iterations,
        seed=seed,
        target_error=float(target_error) if target_error is not None else None,
        max_iterations=limits.max_iterations,
        own_nodes_only=own_nodes_only,
        allow_public=bool(allow_public),
        engine_version=str(engine.version)[:64] if getattr(engine, "version", None) else None,
        seconds_per_iteration=cost.seconds if cost else None,
        events_per_iteration=cost.events if cost else None,
        name=job_name(config, source=name),
        **fight_setup(engine, prepared),
    )
    capacity = capacity_for(
        session,
        user=user,
        hooks=hooks,
        own_nodes_only=own_nodes_only,
        allow_public=job.allow_public,
    )
    if not local and chunk_size is None and chunks is None:
        _check_job_size(job, capacity)
    session.add(job)
    session.flush()
    plans = plan(
        job,
        with_capacity(job, capacity, start=0, iterations=iterations),
        hooks=hooks,
        chunk_size=chunk_size,
        chunks=chunks,
    )
    insert_chunks(session, job=job, plans=plans)
    if capacity.nodes == 0:
        job.status_reason = NO_NODE_REASON
        session.add(job)
    return job


def check_user_quota(
    session: Session, *, user: User, iterations: int, limits: JobLimits = DEFAULT_LIMITS
) -> None:
    """Raise :class:`QuotaExceeded` if a new job of ``iterations`` would take ``user`` over
    their active-job or queued-iteration limit (so one user cannot flood the pool)."""
    active, queued = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(
                sa.func.sum(col(SimJob.total_iterations) - col(SimJob.completed_iterations)), 0
            ),
        ).where(col(SimJob.user_id) == user.id, col(SimJob.status).in_(ACTIVE_JOB_STATUSES))
    ).one()
    if active >= limits.max_active_jobs:
        raise QuotaExceeded(
            f"you have {active} jobs pending or running, the most allowed; wait for one to "
            "finish or cancel one"
        )
    if queued + iterations > limits.max_queued_iterations:
        raise QuotaExceeded(
            f"your active jobs still have {int(queued):,} iterations to run; with {iterations:,} "
            f"more you would pass the limit of {limits.max_queued_iterations:,}",
        )


def _check_job_size(job: SimJob, capacity: Capacity) -> None:
    """Refuse more iterations than fit in the chunk limit at about 5 s per chunk."""
    rate = iteration_rate(
        events_per_iteration=job.events_per_iteration,
        seconds_per_iteration=job.seconds_per_iteration,
        worker_events_per_second=capacity.worker_events_per_second,
    )
    if rate is None:
        return
    most = max_job_iterations(rate)
    if job.total_iterations > most:
        raise InvalidRequest(
            f"iterations: one iteration of this config takes about {1 / rate:.3g} s on a "
            f"node, so a job of it may have at most {most:,} iterations (chunks of about "
            f"{TARGET_CHUNK_SECONDS:g} s); got {job.total_iterations:,}",
            field="iterations",
        )


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
    Returns True when the job has ended (completed, or failed because its stored results
    cannot be merged).
    """
    try:
        merged = merged_result(session, job=job)
    except ResultInvalid as exc:  # never crash the completing request on a stored result
        fail_job(session, job=job, error=f"the chunk results cannot be merged: {exc.message}")
        return True
    # The exact count (the running count is kept after each commit; a process that
    # stopped between a commit and its count would leave it short).
    job.completed_iterations = merged.count
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
                capacity_for(
                    session,
                    user=user,
                    hooks=hooks,
                    own_nodes_only=job.own_nodes_only,
                    allow_public=job.allow_public,
                )
                if user is not None
                else Capacity(0, 0, 0.0)
            )
            round_capacity = with_capacity(
                job, capacity, start=job.total_iterations, iterations=extra
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
    "config_cost",
    "finalize_job",
    "job_progress",
    "plan",
    "store_config",
    "submit_job",
    "user_jobs",
    "with_capacity",
]
