"""Leasing chunks to nodes, taking their results, and finishing jobs.

Chunks are pulled: a node with free workers leases pending chunks of jobs whose owners may
use it, atomically (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite ``BEGIN IMMEDIATE``, see
:func:`wowlab_core.db.write_session`), with a lease token and a deadline. Heartbeats
extend leases; expired leases go back to pending; ``max_attempts`` failures fail the job
with the node's error. Completion is idempotent: a duplicate, or a late result from an
earlier lease of the same chunk, counts once. Every function here works inside the
caller's session and transaction; the caller commits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from wowlab_core.access import allowed_clause
from wowlab_core.db import is_postgres
from wowlab_core.errors import LeaseLost, ResultInvalid, WowlabError
from wowlab_core.models import (
    ChunkLease,
    ChunkStatus,
    JobStatus,
    JSONType,
    Node,
    SimChunk,
    SimConfig,
    SimJob,
    User,
    utcnow,
)
from wowlab_core.planning import ChunkPlan
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Completion, CompletionOutcome, Lease, Outcome
from wowlab_core.results import ChunkResult, merge_in_seed_order

ACTIVE_JOB_STATUSES = (JobStatus.PENDING.value, JobStatus.RUNNING.value)
#: A job planned into this many chunks refreshes PostgreSQL's statistics of sim_chunks.
ANALYZE_AFTER_CHUNKS = 1000
#: A chunk whose lease ran out this many times fails its job (a config that kills nodes).
MAX_EXPIRATIONS = 5
#: Weight of the newest measurement in a node's throughput average.
THROUGHPUT_SMOOTHING = 0.3


def hash_token(token: str) -> str:
    """sha256 hex of a secret token (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(token: str, token_hash: str | None) -> bool:
    """Constant-time check of a token against a stored hash."""
    return token_hash is not None and hmac.compare_digest(hash_token(token), token_hash)


@dataclass(frozen=True)
class CompletionReport:
    """What :func:`complete_chunks` did, for the caller to announce after commit."""

    outcomes: list[CompletionOutcome]
    completed: list[tuple[SimChunk, ChunkResult]]
    finished_jobs: list[SimJob]


# --- planning -------------------------------------------------------------------------


def insert_chunks(session: Session, *, job: SimJob, plans: Sequence[ChunkPlan]) -> int:
    """Insert the planned chunks of ``job`` (one statement)."""
    if not plans:
        return 0
    now = utcnow()
    session.execute(
        sa.insert(SimChunk),
        [
            {
                "job_id": job.id,
                "config_hash": job.config_hash,
                "iterations": p.iterations,
                "seed_offset": p.seed_offset,
                "status": ChunkStatus.PENDING.value,
                "attempts": 0,
                "failures": 0,
                "expirations": 0,
                "created_at": now,
            }
            for p in plans
        ],
    )
    if len(plans) >= ANALYZE_AFTER_CHUNKS and is_postgres(session.get_bind()):  # type: ignore[arg-type]
        # Fresh statistics: without them the lease query sorts every pending chunk
        # (3.3 ms with 5,000 pending) instead of walking the pending index (0.3 ms).
        session.execute(sa.text("ANALYZE sim_chunks"))
    return len(plans)


# --- leasing --------------------------------------------------------------------------


def eligible_jobs_clause(node_id: Any, owner_id: Any) -> sa.ColumnElement[bool]:
    """SQL: active jobs whose owner may use the node (grants only, no plugin hooks).

    ``node_id`` and ``owner_id`` are values or bind parameters.
    """
    return sa.and_(
        col(SimJob.status).in_(ACTIVE_JOB_STATUSES),
        allowed_clause(node_id=node_id, owner_id=owner_id, user_id=SimJob.user_id),
        sa.or_(sa.not_(col(SimJob.own_nodes_only)), col(SimJob.user_id) == owner_id),
    )


# The column type of every timestamp (sqlmodel's UTC-aware DateTime).
_TIMESTAMP = SQLModel.metadata.tables["sim_chunks"].c.leased_at.type


@lru_cache(maxsize=4)
def _lease_statement(postgres: bool, by_job_ids: bool) -> Any:
    """The lease UPDATE, built once: everything that varies is a bind parameter, so
    SQLAlchemy compiles it once per database instead of on every lease."""
    if by_job_ids:
        job_filter = col(SimChunk.job_id).in_(sa.bindparam("p_jobs", expanding=True))
    else:
        p_node = sa.bindparam("p_node", type_=sa.Integer)
        p_owner = sa.bindparam("p_owner", type_=sa.Integer)
        job_filter = col(SimChunk.job_id).in_(
            select(SimJob.id).where(eligible_jobs_clause(p_node, p_owner))
        )
    pick = (
        select(SimChunk.id)
        .where(col(SimChunk.status) == ChunkStatus.PENDING.value, job_filter)
        .order_by(col(SimChunk.job_id), col(SimChunk.seed_offset))
        .limit(sa.bindparam("p_limit", type_=sa.Integer))
    )
    if postgres:
        # MATERIALIZED: a LIMIT ... FOR UPDATE subquery inside IN may be re-run by the
        # planner and then return more than ``limit`` rows.
        picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
    else:
        picked = pick.cte("picked")
    return (
        sa.update(SimChunk)
        .where(col(SimChunk.id).in_(select(picked.c.id)), col(SimChunk.status) == "pending")
        .values(
            status=ChunkStatus.LEASED.value,
            node_id=sa.bindparam("p_node_set", type_=sa.Integer),
            attempts=SimChunk.attempts + 1,
            lease_token_hash=sa.bindparam("p_token_hash", type_=sa.String),
            lease_expires_at=sa.bindparam("p_expires", type_=_TIMESTAMP),
            leased_at=sa.bindparam("p_now", type_=_TIMESTAMP),
        )
        .returning(
            col(SimChunk.id),
            col(SimChunk.job_id),
            col(SimChunk.config_hash),
            col(SimChunk.seed_offset),
            col(SimChunk.iterations),
        )
    )


def _eligible_job_ids_with_hooks(session: Session, node: Node, hooks: Hooks) -> list[int]:
    # Plugins widen guild membership or veto users: decide per job owner in Python.
    from wowlab_core.access import may_use_node

    rows = session.exec(
        select(SimJob.id, SimJob.user_id, SimJob.own_nodes_only).where(
            col(SimJob.status).in_(ACTIVE_JOB_STATUSES)
        )
    ).all()
    decided: dict[int, bool] = {}
    ids: list[int] = []
    for job_id, user_id, own_only in rows:
        if own_only and user_id != node.user_id:
            continue
        if user_id not in decided:
            user = session.get(User, user_id)
            decided[user_id] = user is not None and may_use_node(session, user, node, hooks=hooks)
        if decided[user_id] and job_id is not None:
            ids.append(job_id)
    return ids


def lease_chunks(
    session: Session,
    *,
    node: Node,
    limit: int,
    lease_seconds: float,
    hooks: Hooks | None = None,
    now: datetime | None = None,
) -> list[Lease]:
    """Lease up to ``limit`` pending chunks that ``node`` may run. One token per call."""
    if limit <= 0 or node.user_id is None:
        return []
    now = now or utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    params: dict[str, Any] = {}
    by_job_ids = hooks is not None and (hooks.has_access_veto() or hooks.has_user_groups())
    if by_job_ids:
        assert hooks is not None
        params["p_jobs"] = _eligible_job_ids_with_hooks(session, node, hooks)
        if not params["p_jobs"]:
            return []
    else:
        params.update(p_node=node.id, p_owner=node.user_id)
    token = secrets.token_urlsafe(24)
    token_hash = hash_token(token)
    statement = _lease_statement(is_postgres(session.get_bind()), by_job_ids)  # type: ignore[arg-type]
    params.update(
        p_limit=limit, p_node_set=node.id, p_token_hash=token_hash, p_expires=expires, p_now=now
    )
    rows = session.connection().execute(statement, params).all()
    if not rows:
        return []
    conn = session.connection()
    conn.execute(
        sa.insert(ChunkLease),
        [
            {"chunk_id": r[0], "node_id": node.id, "token_hash": token_hash, "leased_at": now}
            for r in rows
        ],
    )
    job_ids_leased = sorted({r[1] for r in rows})
    jobs = {
        job_id: (seed, engine, status)
        for job_id, seed, engine, status in conn.execute(
            sa.select(
                col(SimJob.id), col(SimJob.seed), col(SimJob.engine), col(SimJob.status)
            ).where(col(SimJob.id).in_(job_ids_leased))
        )
    }
    starting = [j for j in job_ids_leased if jobs[j][2] == JobStatus.PENDING.value]
    if starting:
        conn.execute(
            sa.update(SimJob)
            .where(col(SimJob.id).in_(starting), col(SimJob.status) == JobStatus.PENDING.value)
            .values(status=JobStatus.RUNNING.value, started_at=now, status_reason=None)
        )
    return [
        Lease(
            chunk_id=r[0],
            job_id=r[1],
            config_hash=r[2],
            engine=jobs[r[1]][1],
            seed=jobs[r[1]][0],
            seed_offset=r[3],
            iterations=r[4],
            lease_token=token,
            expires_at=expires,
        )
        for r in sorted(rows, key=lambda r: (r[1], r[3]))
    ]


def extend_leases(
    session: Session, *, node: Node, lease_seconds: float, now: datetime | None = None
) -> int:
    """Push back the deadline of every live lease ``node`` holds (a heartbeat)."""
    now = now or utcnow()
    result = session.execute(
        sa.update(SimChunk)
        .where(
            col(SimChunk.node_id) == node.id,
            col(SimChunk.status) == ChunkStatus.LEASED.value,
            col(SimChunk.lease_expires_at) >= now,
        )
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def cancelled_leases(session: Session, *, node: Node) -> list[int]:
    """Chunks ``node`` is running whose job was cancelled or failed meanwhile."""
    ids = session.exec(
        select(SimChunk.id).where(
            col(SimChunk.node_id) == node.id,
            col(SimChunk.status) == ChunkStatus.CANCELLED.value,
            col(SimChunk.lease_token_hash).isnot(None),
        )
    ).all()
    return [i for i in ids if i is not None]


def release_chunks(
    session: Session, *, node: Node, chunk_ids: Iterable[int], lease_token: str
) -> int:
    """Hand leased chunks back without counting an attempt (a node stopping cleanly)."""
    ids = list(chunk_ids)
    if not ids:
        return 0
    result = session.execute(
        sa.update(SimChunk)
        .where(
            col(SimChunk.id).in_(ids),
            col(SimChunk.node_id) == node.id,
            col(SimChunk.status) == ChunkStatus.LEASED.value,
            col(SimChunk.lease_token_hash) == hash_token(lease_token),
        )
        .values(
            status=ChunkStatus.PENDING.value,
            attempts=sa.case((col(SimChunk.attempts) > 0, SimChunk.attempts - 1), else_=0),
            lease_token_hash=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sa.update(SimChunk)
        .where(
            col(SimChunk.id).in_(ids),
            col(SimChunk.node_id) == node.id,
            col(SimChunk.status) == ChunkStatus.CANCELLED.value,
        )
        .values(lease_token_hash=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def requeue_expired(session: Session, *, now: datetime | None = None) -> tuple[int, list[SimJob]]:
    """Return chunks whose lease ran out to pending; fail jobs whose chunk keeps expiring.

    Returns how many chunks were requeued and the jobs that failed because of it (for the
    caller to announce).
    """
    now = now or utcnow()
    rows = session.execute(
        sa.update(SimChunk)
        .where(
            col(SimChunk.status) == ChunkStatus.LEASED.value, col(SimChunk.lease_expires_at) < now
        )
        .values(
            status=ChunkStatus.PENDING.value,
            lease_token_hash=None,
            lease_expires_at=None,
            expirations=SimChunk.expirations + 1,
        )
        .returning(
            col(SimChunk.id),
            col(SimChunk.job_id),
            col(SimChunk.expirations),
            col(SimChunk.seed_offset),
        )
        .execution_options(synchronize_session=False)
    ).all()
    failed: list[SimJob] = []
    for chunk_id, job_id, expirations, seed_offset in rows:
        if expirations >= MAX_EXPIRATIONS:
            job = session.get(SimJob, job_id)
            if job is not None and job.status in ACTIVE_JOB_STATUSES:
                fail_job(
                    session,
                    job=job,
                    error=f"chunk {chunk_id} (iterations from {seed_offset}) timed out "
                    f"{expirations} times; the nodes running it stopped answering",
                    now=now,
                )
                failed.append(job)
    return len(rows), failed


# --- results --------------------------------------------------------------------------


def _lock_chunks(session: Session, ids: list[int]) -> dict[int, SimChunk]:
    stmt = select(SimChunk).where(col(SimChunk.id).in_(ids)).order_by(col(SimChunk.id))
    if is_postgres(session.get_bind()):  # type: ignore[arg-type]
        stmt = stmt.with_for_update()
    return {
        c.id: c
        for c in session.exec(stmt.execution_options(populate_existing=True)).all()
        if c.id is not None
    }


_COMPLETE_STATEMENT = (
    sa.update(SimChunk)
    .where(col(SimChunk.id) == sa.bindparam("b_id"))
    .values(
        status=ChunkStatus.COMPLETED.value,
        result=sa.bindparam("b_result", type_=JSONType),
        node_id=sa.bindparam("b_node", type_=sa.Integer),
        completed_at=sa.bindparam("b_now", type_=_TIMESTAMP),
        lease_token_hash=None,
        lease_expires_at=None,
    )
)


def _as_completed(
    session: Session, chunk: SimChunk, *, node: Node, result: dict[str, Any], now: datetime
) -> SimChunk:
    """Detach the loaded chunk and mark it completed: a snapshot for event hooks, which
    the session will not flush (the row itself is written by ``_COMPLETE_STATEMENT``)."""
    session.expunge(chunk)
    chunk.status = ChunkStatus.COMPLETED.value
    chunk.result = result
    chunk.node_id = node.id
    chunk.completed_at = now
    chunk.lease_token_hash = None
    chunk.lease_expires_at = None
    return chunk


def _held_lease(session: Session, chunk: SimChunk, node: Node, token_hash: str) -> bool:
    if chunk.lease_token_hash is not None and hmac.compare_digest(
        chunk.lease_token_hash, token_hash
    ):
        return chunk.node_id == node.id
    # A late result: the lease ran out (or the chunk went to another node) but this node
    # did hold it once. The result is deterministic, so it is as good as any other.
    return (
        session.exec(
            select(ChunkLease.id).where(
                col(ChunkLease.chunk_id) == chunk.id,
                col(ChunkLease.token_hash) == token_hash,
                col(ChunkLease.node_id) == node.id,
            )
        ).first()
        is not None
    )


def complete_chunks(
    session: Session,
    *,
    node: Node,
    completions: Sequence[Completion],
    now: datetime | None = None,
) -> CompletionReport:
    """Record chunk results; idempotent. Finished jobs are returned for finalizing."""
    now = now or utcnow()
    chunks = _lock_chunks(session, sorted({c.chunk_id for c in completions}))
    accepted: list[tuple[SimChunk, ChunkResult]] = []
    accepted_ids: set[int] = set()
    updates: list[dict[str, Any]] = []
    elapsed: list[tuple[int, float]] = []
    ordered: list[CompletionOutcome] = []
    # In order: once a chunk is accepted, later copies (in this batch too) are duplicates.
    for completion in completions:
        try:
            result = ChunkResult.from_dict(completion.result)
        except ResultInvalid as exc:
            ordered.append(
                CompletionOutcome(completion.chunk_id, Outcome.REJECTED.value, exc.message)
            )
            continue
        chunk = chunks.get(completion.chunk_id)
        if chunk is not None and chunk.id in accepted_ids:
            ordered.append(
                CompletionOutcome(chunk.id or 0, Outcome.DUPLICATE.value, "already completed")
            )
            continue
        outcome = _judge(session, chunk, node, completion, result)
        ordered.append(outcome)
        if outcome.outcome == Outcome.ACCEPTED.value and chunk is not None:
            stored = result.to_dict()
            accepted_ids.add(chunk.id or 0)
            updates.append({"b_id": chunk.id, "b_result": stored})
            accepted.append(
                (_as_completed(session, chunk, node=node, result=stored, now=now), result)
            )
            if completion.elapsed_seconds and completion.elapsed_seconds > 0:
                elapsed.append((chunk.iterations, completion.elapsed_seconds))
    if updates:
        # One executemany on the Core connection: an ORM flush would cost a statement and
        # its bookkeeping per chunk.
        session.flush()
        session.connection().execute(
            _COMPLETE_STATEMENT, [{**u, "b_node": node.id, "b_now": now} for u in updates]
        )
    finished = _count_progress(session, accepted, now=now)
    if elapsed:
        _update_throughput(node, elapsed)
        session.add(node)
    return CompletionReport(
        outcomes=ordered,
        completed=accepted,
        finished_jobs=finished,
    )


def _judge(
    session: Session,
    chunk: SimChunk | None,
    node: Node,
    completion: Completion,
    result: ChunkResult,
) -> CompletionOutcome:
    cid = completion.chunk_id
    if chunk is None:
        return CompletionOutcome(cid, Outcome.REJECTED.value, "no such chunk")
    token_hash = hash_token(completion.lease_token)
    if chunk.status == ChunkStatus.COMPLETED.value:
        return CompletionOutcome(cid, Outcome.DUPLICATE.value, "already completed")
    if not _held_lease(session, chunk, node, token_hash):
        return CompletionOutcome(
            cid, Outcome.REJECTED.value, "this node does not hold a lease on the chunk"
        )
    if chunk.status in (ChunkStatus.CANCELLED.value, ChunkStatus.FAILED.value):
        chunk.lease_token_hash = None
        session.add(chunk)
        return CompletionOutcome(cid, Outcome.IGNORED.value, f"the job is {chunk.status}")
    if result.seed_offset != chunk.seed_offset or result.count != chunk.iterations:
        return CompletionOutcome(
            cid,
            Outcome.REJECTED.value,
            f"result covers [{result.seed_offset}, {result.seed_offset + result.count}) but the "
            f"chunk is [{chunk.seed_offset}, {chunk.seed_offset + chunk.iterations})",
        )
    return CompletionOutcome(cid, Outcome.ACCEPTED.value)


def _count_progress(
    session: Session, accepted: list[tuple[SimChunk, ChunkResult]], *, now: datetime
) -> list[SimJob]:
    per_job: dict[int, int] = {}
    for chunk, _ in accepted:
        per_job[chunk.job_id] = per_job.get(chunk.job_id, 0) + chunk.iterations
    finished: list[SimJob] = []
    for job_id in sorted(per_job):  # a fixed order: no deadlocks between completers
        done, total, status = session.execute(
            sa.update(SimJob)
            .where(col(SimJob.id) == job_id)
            .values(completed_iterations=SimJob.completed_iterations + per_job[job_id])
            .returning(
                col(SimJob.completed_iterations), col(SimJob.total_iterations), col(SimJob.status)
            )
            .execution_options(synchronize_session=False)
        ).one()
        if done >= total and status in ACTIVE_JOB_STATUSES:
            job = session.get(SimJob, job_id, populate_existing=True)
            if job is not None:
                finished.append(job)
    return finished


def _update_throughput(node: Node, samples: list[tuple[int, float]]) -> None:
    rate = sum(i for i, _ in samples) / sum(s for _, s in samples)
    old = node.iterations_per_second
    node.iterations_per_second = rate if old is None else old + THROUGHPUT_SMOOTHING * (rate - old)


def merged_result(session: Session, *, job: SimJob) -> ChunkResult:
    """Merge a job's completed chunk results in seed order."""
    rows = session.exec(
        select(SimChunk.result)
        .where(col(SimChunk.job_id) == job.id, col(SimChunk.status) == ChunkStatus.COMPLETED.value)
        .order_by(col(SimChunk.seed_offset))
    ).all()
    return merge_in_seed_order(ChunkResult.from_dict(r) for r in rows)


def fail_chunk(
    session: Session,
    *,
    node: Node,
    chunk_id: int,
    lease_token: str,
    error: str,
    now: datetime | None = None,
) -> SimJob | None:
    """Record a node's error for a chunk it holds. Returns the job if it failed because of it."""
    now = now or utcnow()
    chunk = _lock_chunks(session, [chunk_id]).get(chunk_id)
    if (
        chunk is None
        or chunk.status != ChunkStatus.LEASED.value
        or not tokens_match(lease_token, chunk.lease_token_hash)
        or chunk.node_id != node.id
    ):
        raise LeaseLost(f"chunk {chunk_id} is not leased to this node")
    error = (error or "unknown error")[:1500]
    chunk.failures += 1
    chunk.error = error
    chunk.lease_token_hash = None
    chunk.lease_expires_at = None
    job = session.get(SimJob, chunk.job_id)
    if job is not None and chunk.failures >= job.max_attempts:
        chunk.status = ChunkStatus.FAILED.value
        session.add(chunk)
        fail_job(
            session,
            job=job,
            error=f"chunk {chunk.id} failed {chunk.failures} times; last error from node "
            f"{node.name!r}: {error}",
            now=now,
        )
        return job
    chunk.status = ChunkStatus.PENDING.value
    session.add(chunk)
    return None


# --- job endings ----------------------------------------------------------------------


def _stop_open_chunks(session: Session, *, job_id: int) -> None:
    session.execute(
        sa.update(SimChunk)
        .where(
            col(SimChunk.job_id) == job_id,
            col(SimChunk.status).in_((ChunkStatus.PENDING.value, ChunkStatus.LEASED.value)),
        )
        .values(status=ChunkStatus.CANCELLED.value, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


def fail_job(session: Session, *, job: SimJob, error: str, now: datetime | None = None) -> None:
    """Mark a job failed and stop its open chunks."""
    job.status = JobStatus.FAILED.value
    job.error = error[:2000]
    job.finished_at = now or utcnow()
    session.add(job)
    _stop_open_chunks(session, job_id=job.id or 0)


def cancel_job(session: Session, *, job: SimJob, now: datetime | None = None) -> bool:
    """Cancel an active job. Returns False if it had already ended."""
    locked = session.exec(
        select(SimJob).where(col(SimJob.id) == job.id).with_for_update()
        if is_postgres(session.get_bind())  # type: ignore[arg-type]
        else select(SimJob).where(col(SimJob.id) == job.id)
    ).one()
    if locked.status not in ACTIVE_JOB_STATUSES:
        return False
    locked.status = JobStatus.CANCELLED.value
    locked.finished_at = now or utcnow()
    session.add(locked)
    _stop_open_chunks(session, job_id=locked.id or 0)
    return True


def complete_job(
    session: Session, *, job: SimJob, report: dict[str, Any], now: datetime | None = None
) -> None:
    """Store the report of a finished job."""
    job.status = JobStatus.COMPLETED.value
    job.result = report
    job.finished_at = now or utcnow()
    job.status_reason = None
    session.add(job)


def touch_config(session: Session, *, config_hash: str, now: datetime | None = None) -> None:
    """Mark a config as used now."""
    session.execute(
        sa.update(SimConfig)
        .where(col(SimConfig.hash) == config_hash)
        .values(last_used_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )


def error_message(exc: BaseException) -> str:
    """One line for an error reported by or about a node."""
    if isinstance(exc, WowlabError):
        return exc.message
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


__all__ = [
    "ACTIVE_JOB_STATUSES",
    "MAX_EXPIRATIONS",
    "CompletionReport",
    "cancel_job",
    "cancelled_leases",
    "complete_chunks",
    "complete_job",
    "eligible_jobs_clause",
    "error_message",
    "extend_leases",
    "fail_chunk",
    "fail_job",
    "hash_token",
    "insert_chunks",
    "lease_chunks",
    "merged_result",
    "release_chunks",
    "requeue_expired",
    "tokens_match",
    "touch_config",
]
