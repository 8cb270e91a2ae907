"""Result verification by exact replication (BOINC's adaptive replication, made exact).

A chunk's result is a pure function of (config, seed, offset, iterations, engine version),
so a second node's run must match the first byte for byte. A node's results are checked
for every user who does not own it: always the first chunk it returns for that user, then
a sample (``rate``, four times higher until the node is trusted). The second run goes to a
node of another owner, preferably the submitter's own or a trusted one (see
:mod:`wowlab_core.leases`). When the two runs disagree, the submitter's own node is
believed; otherwise a third node decides. The liar is flagged (it then runs only its
owner's jobs), its unconfirmed results in active jobs are discarded and run again, and
its owner and the affected submitters get a notice.

Every function works inside the caller's session and transaction; the caller commits.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from wowlab_core.job_states import ACTIVE_JOB_STATUSES
from wowlab_core.models import ChunkStatus, Node, Notice, SimChunk, SimJob, utcnow

log = logging.getLogger(__name__)

#: Default share of a not-owned node's results that is run again elsewhere.
DEFAULT_VERIFY_RATE = 0.05
#: Until a node is trusted, its results are sampled this many times more often.
LOW_TRUST_FACTOR = 4.0
#: A node's trust score stops growing here.
MAX_TRUST_SCORE = 1000


@dataclass(frozen=True)
class VerifyPolicy:
    """How often results of nodes the submitter does not own are run again elsewhere."""

    rate: float = DEFAULT_VERIFY_RATE
    low_trust_factor: float = LOW_TRUST_FACTOR
    #: Uniform [0, 1) draws; tests pass a seeded ``random.Random().random``.
    random: Callable[[], float] = field(default=secrets.SystemRandom().random)

    def rate_for(self, *, trusted: bool) -> float:
        """The sampling rate for a node's results."""
        return min(1.0, self.rate if trusted else self.rate * self.low_trust_factor)


@dataclass(frozen=True)
class Verdict:
    """What a verification run decided about a chunk.

    ``final``: the chunk is done with ``result`` computed by ``computed_by`` (and
    confirmed by ``verified_by``); otherwise ``tiebreak`` (a third run is due) or
    undecided (all runs disagree: the chunk starts over). ``liars`` are the nodes whose
    result was contradicted.
    """

    final: bool
    result: Any = None
    computed_by: int | None = None
    verified_by: int | None = None
    tiebreak: bool = False
    liars: tuple[int, ...] = ()


def already_checked_for(session: Session, *, node: Node, user_id: int) -> bool:
    """Whether ``node`` has computed any chunk of ``user_id``'s jobs before."""
    return (
        session.exec(
            select(SimChunk.id)
            .join(SimJob, col(SimJob.id) == col(SimChunk.job_id))
            .where(col(SimChunk.computed_by) == node.id, col(SimJob.user_id) == user_id)
            .limit(1)
        ).first()
        is not None
    )


def judge_replica(
    chunk: SimChunk, *, node: Node, result: dict[str, Any], submitter_id: int
) -> Verdict:
    """Compare a verification run's ``result`` (already normalised) with the stored ones."""
    node_id = node.id or 0
    own = node.user_id == submitter_id
    first, first_by = chunk.result, chunk.computed_by
    if chunk.verify_state == "tiebreak":
        second, second_by = chunk.alt_result, chunk.alt_node_id
        if own:  # the submitter's own node is believed
            liars = tuple(
                n for r, n in ((first, first_by), (second, second_by)) if r != result and n
            )
            return Verdict(True, result, node_id, None, liars=liars)
        if result == first:
            return Verdict(True, first, first_by, node_id, liars=(second_by,) if second_by else ())
        if result == second:
            return Verdict(True, second, second_by, node_id, liars=(first_by,) if first_by else ())
        return Verdict(False)  # three different answers: start over
    if result == first:
        return Verdict(True, first, first_by, node_id)
    if own:
        return Verdict(True, result, node_id, None, liars=(first_by,) if first_by else ())
    return Verdict(False, tiebreak=True)


def _notify(session: Session, *, user_id: int | None, kind: str, message: str, **refs: Any) -> None:
    if user_id is not None:
        session.add(Notice(user_id=user_id, kind=kind, message=message[:1000], **refs))


def flag_liar(
    session: Session,
    *,
    liar_id: int,
    job: SimJob,
    chunk_id: int,
    now: datetime | None = None,
) -> dict[int, int]:
    """Flag a node whose result another node's run contradicted, and discard its
    unconfirmed results in every active job (they are run again).

    Returns the iterations to take off each job's completed count.
    """
    now = now or utcnow()
    liar = session.get(Node, liar_id)
    if liar is None:
        return {}
    reason = f"its result for chunk {chunk_id} of job #{job.id} did not match another node's run"
    first_offence = liar.flagged_at is None
    liar.flagged_at = liar.flagged_at or now
    liar.flag_reason = reason[:500]
    liar.trust_score = 0
    session.add(liar)
    active_jobs = select(SimJob.id).where(col(SimJob.status).in_(ACTIVE_JOB_STATUSES))
    discarded = session.execute(
        sa.select(
            col(SimChunk.id), col(SimChunk.job_id), col(SimChunk.iterations), col(SimChunk.status)
        ).where(
            col(SimChunk.computed_by) == liar_id,
            col(SimChunk.verified_by).is_(None),
            col(SimChunk.status).in_((ChunkStatus.COMPLETED.value, ChunkStatus.VERIFY.value)),
            col(SimChunk.job_id).in_(active_jobs),
            col(SimChunk.id) != chunk_id,
        )
    ).all()
    uncount: dict[int, int] = {}
    for _, job_id, iterations, status in discarded:
        if status == ChunkStatus.COMPLETED.value:
            uncount[job_id] = uncount.get(job_id, 0) + iterations
    if discarded:
        session.execute(
            sa.update(SimChunk)
            .where(col(SimChunk.id).in_([r[0] for r in discarded]))
            .values(
                status=ChunkStatus.PENDING.value,
                result=None,
                computed_by=None,
                verify_state=None,
                alt_result=None,
                alt_node_id=None,
                completed_at=None,
                progress=0,
            )
            .execution_options(synchronize_session=False)
        )
    # A tiebreak the liar took part in as the second opinion is a plain check again.
    session.execute(
        sa.update(SimChunk)
        .where(
            col(SimChunk.alt_node_id) == liar_id,
            col(SimChunk.status) == ChunkStatus.VERIFY.value,
            col(SimChunk.id) != chunk_id,
        )
        .values(alt_result=None, alt_node_id=None, verify_state="pending")
        .execution_options(synchronize_session=False)
    )
    # Chunks of other users it holds now go back to the pool (it may not run them).
    session.execute(
        sa.update(SimChunk)
        .where(
            col(SimChunk.node_id) == liar_id,
            col(SimChunk.status) == ChunkStatus.LEASED.value,
            col(SimChunk.job_id).in_(select(SimJob.id).where(col(SimJob.user_id) != liar.user_id)),
        )
        .values(
            status=sa.case(
                (col(SimChunk.verify_state).in_(("pending", "tiebreak")), "verify"),
                else_="pending",
            ),
            lease_token_hash=None,
            lease_expires_at=None,
            lease_deadline_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    log.warning("node %s (%r) flagged: %s", liar_id, liar.name, reason)
    affected = {job.user_id} | {
        uid
        for (uid,) in session.execute(
            sa.select(col(SimJob.user_id)).where(
                col(SimJob.id).in_({r[1] for r in discarded} or {0})
            )
        ).all()
    }
    if first_offence:
        _notify(
            session,
            user_id=liar.user_id,
            kind="node-flagged",
            message=f"Your node {liar.name!r} was flagged: {reason}. It now runs only your own "
            "jobs. Check the machine (overclock, faulty memory, a modified client) and ask an "
            "admin to clear the flag.",
            node_id=liar_id,
            job_id=job.id,
        )
    for user_id in sorted(u for u in affected if u != liar.user_id):
        _notify(
            session,
            user_id=user_id,
            kind="wrong-result",
            message=f"Node {liar.name!r} returned a wrong result for job #{job.id}; its "
            "unconfirmed results were discarded and run again on other nodes.",
            node_id=liar_id,
            job_id=job.id,
        )
    return uncount


def confirm(session: Session, *, node_id: int | None) -> None:
    """Another node's run matched ``node_id``'s result: its trust score grows."""
    if node_id is not None:
        session.execute(
            sa.update(Node)
            .where(col(Node.id) == node_id)
            .values(
                trust_score=sa.case(
                    (col(Node.trust_score) >= MAX_TRUST_SCORE, MAX_TRUST_SCORE),
                    else_=Node.trust_score + 1,
                )
            )
            .execution_options(synchronize_session=False)
        )


def accept_stale_checks(
    session: Session, *, older_than: timedelta, now: datetime | None = None
) -> dict[int, int]:
    """Results that waited ``older_than`` for a check nobody took (every other owner's
    node went away) count unchecked, so a job never hangs on a check; the job's page says
    which share of it is unchecked. A dispute (``tiebreak``) keeps waiting for its third
    run. Returns the iterations to add to each job's completed count."""
    now = now or utcnow()
    rows = session.execute(
        sa.update(SimChunk)
        .where(
            col(SimChunk.status) == ChunkStatus.VERIFY.value,
            col(SimChunk.verify_state) == "pending",
            col(SimChunk.completed_at) < now - older_than,
        )
        .values(status=ChunkStatus.COMPLETED.value, verify_state=None, completed_at=now)
        .returning(col(SimChunk.job_id), col(SimChunk.iterations))
        .execution_options(synchronize_session=False)
    ).all()
    added: dict[int, int] = {}
    for job_id, iterations in rows:
        added[job_id] = added.get(job_id, 0) + iterations
    return added


def job_provenance(session: Session, *, job_id: int) -> list[dict[str, Any]]:
    """The nodes that computed a job's chunks: name, owner, chunks, iterations, how many
    of them another node confirmed, and whether the node is flagged."""
    from wowlab_core.models import User

    rows = session.execute(
        sa.select(
            col(Node.id),
            col(Node.name),
            col(User.username),
            col(Node.flagged_at),
            sa.func.count(col(SimChunk.id)),
            sa.func.sum(col(SimChunk.iterations)),
            sa.func.count(col(SimChunk.verified_by)),
        )
        .select_from(SimChunk)
        .join(Node, col(Node.id) == col(SimChunk.computed_by))
        .outerjoin(User, col(User.id) == col(Node.user_id))
        .where(
            col(SimChunk.job_id) == job_id,
            col(SimChunk.status).in_((ChunkStatus.COMPLETED.value, ChunkStatus.VERIFY.value)),
        )
        .group_by(col(Node.id), col(Node.name), col(User.username), col(Node.flagged_at))
        .order_by(col(Node.id))
    ).all()
    return [
        {
            "node_id": node_id,
            "name": name,
            "owner": owner,
            "flagged": flagged is not None,
            "chunks": int(chunks),
            "iterations": int(iterations or 0),
            "verified_chunks": int(verified),
        }
        for node_id, name, owner, flagged, chunks, iterations, verified in rows
    ]


def unverified_share(provenance: Sequence[dict[str, Any]], owner_name: str | None) -> float:
    """The share of a job's iterations that rests on other people's unconfirmed runs."""
    total = sum(p["iterations"] for p in provenance)
    if not total:
        return 0.0
    foreign = sum(
        p["iterations"] * (p["chunks"] - p["verified_chunks"]) / max(p["chunks"], 1)
        for p in provenance
        if p["owner"] != owner_name
    )
    return float(foreign / total)


__all__ = [
    "DEFAULT_VERIFY_RATE",
    "LOW_TRUST_FACTOR",
    "Verdict",
    "VerifyPolicy",
    "accept_stale_checks",
    "already_checked_for",
    "confirm",
    "flag_liar",
    "job_provenance",
    "judge_replica",
    "unverified_share",
]
