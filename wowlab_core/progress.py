"""A job's progress as people watch it: iterations done (within running chunks too), and
what it is doing in words: waiting for a node (and why), running on N nodes, finishing.

Nodes report the iterations done of each running chunk with their heartbeats
(``SimChunk.progress``); a chunk computed once and waiting for a second node's check counts
as done here (its first run is over), so the count does not fall back while it is checked.
Everything is read in a few indexed queries, cheap enough for a page polling every second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from wowlab_core.access import usable_nodes
from wowlab_core.leases import VERIFYING_STATES, runs_engine_of
from wowlab_core.models import FINISHED_JOB_STATUSES, ChunkStatus, SimChunk, SimJob, User


def _beyond_counted() -> sa.ColumnElement[int]:
    """Per chunk, its iterations done that ``completed_iterations`` does not count yet."""
    computed_once = sa.or_(
        col(SimChunk.status) == ChunkStatus.VERIFY.value,
        col(SimChunk.verify_state).in_(VERIFYING_STATES),
    )
    # A heartbeat stores at most the chunk's iterations as its progress (leases.beat).
    return sa.case(
        (computed_once, col(SimChunk.iterations)),
        (col(SimChunk.status) == ChunkStatus.LEASED.value, col(SimChunk.progress)),
        else_=0,
    )


def in_chunk_iterations(session: Session, *, job_ids: Sequence[int]) -> dict[int, int]:
    """Iterations done beyond ``completed_iterations``, by job: those of running chunks
    (as their nodes last reported) and of chunks computed once and being checked."""
    ids = [i for i in job_ids if i]
    if not ids:
        return {}
    rows = session.execute(
        sa.select(col(SimChunk.job_id), sa.func.sum(_beyond_counted()))
        .where(
            col(SimChunk.job_id).in_(ids),
            col(SimChunk.status).in_((ChunkStatus.LEASED.value, ChunkStatus.VERIFY.value)),
        )
        .group_by(col(SimChunk.job_id))
    ).all()
    return {job_id: int(total or 0) for job_id, total in rows}


def iterations_done(job: SimJob, in_chunk: int) -> int:
    """What a progress bar shows: completed iterations plus ``in_chunk``, at most the total."""
    return min(job.completed_iterations + max(in_chunk, 0), job.total_iterations)


def job_progress(session: Session, *, job: SimJob) -> dict[str, int]:
    """Chunks by status and iterations done (within running chunks too), for progress
    displays; ``counted_iterations`` is what finished, checked chunks add up to."""
    counts = {s.value: 0 for s in ChunkStatus}
    in_chunk = working = 0
    leased = col(SimChunk.status) == ChunkStatus.LEASED.value
    for status, n, beyond, nodes in session.execute(  # one pass over the job's chunks
        sa.select(
            col(SimChunk.status),
            sa.func.count(),
            sa.func.sum(_beyond_counted()),
            sa.func.count(sa.distinct(sa.case((leased, col(SimChunk.node_id))))),
        )
        .where(col(SimChunk.job_id) == job.id)
        .group_by(col(SimChunk.status))
    ).all():
        counts[status] = counts.get(status, 0) + int(n)
        in_chunk += int(beyond or 0)
        if status == ChunkStatus.LEASED.value:
            working = int(nodes)
    return {
        "completed_iterations": iterations_done(job, in_chunk),
        "counted_iterations": job.completed_iterations,
        "total_iterations": job.total_iterations,
        "chunks_total": sum(counts.values()),
        **{f"chunks_{k}": v for k, v in counts.items()},
        "nodes_working": working,
    }


@dataclass(frozen=True)
class JobState:
    """What a job is doing, for people.

    Attributes:
        state: ``waiting``, ``running``, ``finishing``, or the job's final status.
        text: the same in words ("running on 3 nodes").
        waiting_reason: why no node runs it (only in state ``waiting``).
    """

    state: str
    text: str
    waiting_reason: str | None = None


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def waiting_reason(session: Session, *, job: SimJob) -> str:
    """Why none of the nodes ``job`` may use runs it now (plugins' vetoes are not asked).

    One query for the nodes, one for their running chunks: cheap enough to poll.
    """
    owner = session.get(User, job.user_id)
    if owner is None:
        return "its owner's account is gone"
    nodes = [
        n
        for n in usable_nodes(session, owner, online_only=True, include_public=job.allow_public)
        if not job.own_nodes_only or n.user_id == owner.id
    ]
    if not nodes:
        if job.own_nodes_only:
            return "none of your own nodes is online (this job runs only on yours)"
        return "no node you can use is online"
    capable = [n for n in nodes if runs_engine_of(n, job)]
    if not capable:
        version = f" (version {job.engine_version})" if job.engine_version else ""
        return (
            f"{_plural(len(nodes), 'node')} you can use "
            f"{'is' if len(nodes) == 1 else 'are'} online, but none runs the "
            f"{job.engine} engine{version}"
        )
    busy = dict(
        session.execute(
            sa.select(col(SimChunk.node_id), sa.func.count())
            .where(
                col(SimChunk.status) == ChunkStatus.LEASED.value,
                col(SimChunk.node_id).in_([n.id for n in capable]),
            )
            .group_by(col(SimChunk.node_id))
        ).all()
    )
    if all(busy.get(n.id, 0) >= n.max_parallel for n in capable):
        if len(capable) == 1:
            return "the one node you can use is busy with other work"
        return f"all {len(capable):,} nodes you can use are busy with other work"
    return "a free node should pick it up within seconds"


def job_state(session: Session, *, job: SimJob, progress: dict[str, Any]) -> JobState:
    """What ``job`` is doing now (``progress`` from :func:`job_progress`)."""
    if job.status in FINISHED_JOB_STATUSES:
        return JobState(job.status, job.status)
    if progress["completed_iterations"] >= job.total_iterations:
        if progress.get("chunks_verify", 0) or progress.get("chunks_leased", 0):
            return JobState("finishing", "finishing: a second node checks a sample")
        return JobState("finishing", "finishing: merging the results")
    working = int(progress.get("nodes_working", 0))
    if working:
        return JobState("running", f"running on {_plural(working, 'node')}")
    reason = waiting_reason(session, job=job)
    return JobState("waiting", f"waiting for a node: {reason}", reason)


__all__ = [
    "JobState",
    "in_chunk_iterations",
    "iterations_done",
    "job_progress",
    "job_state",
    "waiting_reason",
]
