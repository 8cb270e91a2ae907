"""Taking nodes' results and errors for the chunks they leased.

Completion is idempotent: a duplicate, or a late result from an earlier lease of the same
chunk, counts once. A result of a node the submitter does not own may be held for
verification (:mod:`wowlab_core.verification`) before it counts. A chunk a node reports
an error for goes back to the pool, never to that node again; it fails its job only once
nodes of at least two different machines failed it. Every function works inside the
caller's session and transaction; the caller commits.
"""

from __future__ import annotations

import hmac
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from wowlab_core import verification
from wowlab_core.db import session_is_postgres
from wowlab_core.errors import LeaseLost, ResultInvalid
from wowlab_core.job_states import (
    ACTIVE_JOB_STATUSES,
    OPEN_CHUNK_STATUSES,
    fail_job,
    insert_chunks,
)
from wowlab_core.leases import OUTCOME_FAILED, VERIFYING_STATES, is_trusted, online_nodes_for
from wowlab_core.models import (
    ChunkLease,
    ChunkStatus,
    JobStatus,
    JSONType,
    Node,
    SimChunk,
    SimJob,
    utcnow,
)
from wowlab_core.planning import ChunkPlan
from wowlab_core.protocol import Completion, CompletionOutcome, Outcome
from wowlab_core.results import ChunkResult, merge_in_seed_order
from wowlab_core.tokens import hash_token, tokens_match

#: Weight of the newest measurement in a node's throughput average.
THROUGHPUT_SMOOTHING = 0.3
#: A node claiming more engine events per second of one worker than this is not believed.
MAX_EVENTS_PER_SECOND = 1e10
#: A chunk fails its job once this many different nodes reported an error for it.
FAILED_NODES_TO_FAIL_JOB = 2

_TIMESTAMP = SQLModel.metadata.tables["sim_chunks"].c.leased_at.type


@dataclass(frozen=True)
class CompletionReport:
    """What :func:`complete_chunks` did, for the caller to announce after commit."""

    outcomes: list[CompletionOutcome]
    #: Chunks whose result now counts (events: ``wowlab_chunk_completed``).
    completed: list[tuple[SimChunk, ChunkResult]]
    #: Iterations to add to each job's completed count once this transaction committed
    #: (:func:`add_progress`; negative for a liar's discarded results).
    progress: dict[int, int]
    #: Nodes flagged for a wrong result in this call.
    flagged_nodes: list[int] = field(default_factory=list)
    #: Chunks that went back to the pool (a verification run is due, or a liar's
    #: results were discarded): nodes waiting for work should hear of it.
    requeued: int = 0


#: The largest row id (the id columns are INTEGER): a larger number names no chunk, and
#: must not reach PostgreSQL, where it would overflow int4 and fail the whole request.
MAX_ROW_ID = 2**31 - 1


def is_row_id(value: object) -> bool:
    """Whether ``value`` can name a row (a positive INTEGER, not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ROW_ID


def _lock_chunks(session: Session, ids: list[int]) -> dict[int, SimChunk]:
    ids = [i for i in ids if isinstance(i, int) and 0 < i <= MAX_ROW_ID]
    if not ids:
        return {}
    stmt = select(SimChunk).where(col(SimChunk.id).in_(ids)).order_by(col(SimChunk.id))
    if session_is_postgres(session):
        stmt = stmt.with_for_update()
    return {
        c.id: c
        for c in session.exec(stmt.execution_options(populate_existing=True)).all()
        if c.id is not None
    }


# One statement for every way a completion changes a chunk (executemany, Core level:
# an ORM flush would cost a statement and its bookkeeping per chunk).
_SETTLE_STATEMENT = (
    sa.update(SimChunk)
    .where(col(SimChunk.id) == sa.bindparam("b_id"))
    .values(
        status=sa.bindparam("b_status", type_=sa.String),
        result=sa.bindparam("b_result", type_=JSONType),
        node_id=sa.bindparam("b_node", type_=sa.Integer),
        computed_by=sa.bindparam("b_computed_by", type_=sa.Integer),
        verified_by=sa.bindparam("b_verified_by", type_=sa.Integer),
        verify_state=sa.bindparam("b_verify_state", type_=sa.String),
        alt_result=sa.bindparam("b_alt_result", type_=JSONType),
        alt_node_id=sa.bindparam("b_alt_node", type_=sa.Integer),
        completed_at=sa.bindparam("b_now", type_=_TIMESTAMP),
        lease_token_hash=None,
        lease_expires_at=None,
        lease_deadline_at=None,
    )
)


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


def _judge(
    session: Session,
    chunk: SimChunk | None,
    node: Node,
    completion: Completion,
    result: ChunkResult,
    submitter: int | None,
) -> CompletionOutcome:
    cid = completion.chunk_id
    if chunk is None:
        return CompletionOutcome(cid, Outcome.REJECTED.value, "no such chunk")
    if chunk.status == ChunkStatus.COMPLETED.value:
        return CompletionOutcome(cid, Outcome.DUPLICATE.value, "already completed")
    if not _held_lease(session, chunk, node, hash_token(completion.lease_token)):
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
    if node.flagged_at is not None and submitter != node.user_id:
        return CompletionOutcome(
            cid, Outcome.REJECTED.value, "this node is flagged: it runs only its owner's jobs"
        )
    if node.id is not None and node.id in (chunk.computed_by, chunk.alt_node_id):
        return CompletionOutcome(
            cid, Outcome.DUPLICATE.value, "already recorded; another node is checking it"
        )
    return CompletionOutcome(cid, Outcome.ACCEPTED.value)


@dataclass
class _Batch:
    """What one completion call changes, gathered before it is written."""

    settle: list[dict[str, Any]] = field(default_factory=list)
    counted: list[tuple[SimChunk, ChunkResult]] = field(default_factory=list)
    delta: dict[int, int] = field(default_factory=dict)
    #: (liar node, chunk, job) for each contradicted result.
    liars: list[tuple[int, int, int]] = field(default_factory=list)
    confirmed: list[int] = field(default_factory=list)
    requeued: int = 0
    checked_pairs: set[tuple[int, int]] = field(default_factory=set)
    #: (job, owner of the computing node) -> whether a node of another owner is online.
    checker: dict[tuple[int, int], bool] = field(default_factory=dict)
    #: Whether to keep a snapshot of each counted chunk (for the event listeners).
    snapshots: bool = True

    def row(self, chunk: SimChunk, node: Node, now: datetime, **values: Any) -> None:
        base = {
            "b_id": chunk.id,
            "b_status": ChunkStatus.COMPLETED.value,
            "b_result": None,
            "b_node": node.id,
            "b_computed_by": None,
            "b_verified_by": None,
            "b_verify_state": None,
            "b_alt_result": None,
            "b_alt_node": None,
            "b_now": now,
        }
        self.settle.append({**base, **values})

    def count(self, chunk: SimChunk, final: ChunkResult, **changes: Any) -> None:
        if self.snapshots:
            snapshot = chunk.model_copy(update={"status": ChunkStatus.COMPLETED.value, **changes})
            self.counted.append((snapshot, final))
        self.delta[chunk.job_id] = self.delta.get(chunk.job_id, 0) + chunk.iterations


def _first_run(
    session: Session,
    batch: _Batch,
    chunk: SimChunk,
    node: Node,
    result: ChunkResult,
    stored: dict[str, Any],
    submitter: int,
    policy: verification.VerifyPolicy,
    now: datetime,
) -> None:
    pair = (node.id or 0, submitter)
    sample = False
    if node.user_id != submitter:
        first = pair not in batch.checked_pairs and not verification.already_checked_for(
            session, node=node, user_id=submitter
        )
        sample = first or policy.random() < policy.rate_for(trusted=is_trusted(node))
        if sample:
            # Only when some node could check it: a job that runs only on a friend's node
            # must not wait for a check nobody can make (its page says it is unchecked).
            key = (chunk.job_id, node.user_id or 0)
            if key not in batch.checker:
                job = session.get(SimJob, chunk.job_id)
                batch.checker[key] = job is not None and _checker_online(session, job, node)
            sample = batch.checker[key]
    batch.checked_pairs.add(pair)
    if sample:
        batch.row(
            chunk,
            node,
            now,
            b_status=ChunkStatus.VERIFY.value,
            b_result=stored,
            b_computed_by=node.id,
            b_verify_state="pending",
        )
        batch.requeued += 1
        return
    batch.row(chunk, node, now, b_result=stored, b_computed_by=node.id)
    batch.count(chunk, result, result=stored, computed_by=node.id, node_id=node.id)


def _replica_run(
    batch: _Batch,
    chunk: SimChunk,
    node: Node,
    result: ChunkResult,
    stored: dict[str, Any],
    submitter: int,
    now: datetime,
) -> None:
    verdict = verification.judge_replica(chunk, node=node, result=stored, submitter_id=submitter)
    batch.liars.extend((liar, chunk.id or 0, chunk.job_id) for liar in verdict.liars)
    if verdict.final:
        batch.row(
            chunk,
            node,
            now,
            b_result=verdict.result,
            b_computed_by=verdict.computed_by,
            b_verified_by=verdict.verified_by,
            b_verify_state="verified",
        )
        if verdict.verified_by is not None and not verdict.liars:
            batch.confirmed.append(verdict.computed_by or 0)
        final = ChunkResult.from_dict(verdict.result)
        batch.count(
            chunk,
            final,
            result=verdict.result,
            computed_by=verdict.computed_by,
            verified_by=verdict.verified_by,
        )
        return
    batch.requeued += 1
    if verdict.tiebreak:
        batch.row(
            chunk,
            node,
            now,
            b_status=ChunkStatus.VERIFY.value,
            b_result=chunk.result,
            b_computed_by=chunk.computed_by,
            b_verify_state="tiebreak",
            b_alt_result=stored,
            b_alt_node=node.id,
        )
    else:  # every run disagreed: nobody can tell who is right, so the chunk starts over
        batch.row(chunk, node, now, b_status=ChunkStatus.PENDING.value, b_now=None)


#: PostgreSQL: results for chunks this node holds under the token it names, of jobs its
#: owner submitted (never checked by another node), stored in one statement. The results
#: travel as one JSON array (``jsonb_array_elements``), not as a ``jsonb[]``: psycopg
#: escapes every quote of every element of a text-format array with a regex substitution,
#: which cost a fifth of the CPU of a batch of 50 results.
_OWN_RESULTS_STATEMENT = sa.text(
    """
    UPDATE sim_chunks AS c
    SET status = 'completed', result = v.result, computed_by = c.node_id,
        verified_by = NULL, verify_state = NULL, alt_result = NULL, alt_node_id = NULL,
        completed_at = :now, lease_token_hash = NULL, lease_expires_at = NULL,
        lease_deadline_at = NULL
    FROM ROWS FROM (
        unnest(CAST(:ids AS integer[])), unnest(CAST(:hashes AS varchar[])),
        unnest(CAST(:offsets AS bigint[])), unnest(CAST(:counts AS integer[])),
        jsonb_array_elements(CAST(:results AS jsonb))
    ) AS v(id, token_hash, seed_offset, count, result), sim_jobs AS j
    WHERE c.id = v.id AND c.status = 'leased' AND c.node_id = :node
      AND c.lease_token_hash = v.token_hash AND c.verify_state IS NULL
      AND c.seed_offset = v.seed_offset AND c.iterations = v.count
      AND j.id = c.job_id AND j.user_id = :owner
    RETURNING c.id, c.job_id, c.node_id, c.config_hash, c.iterations, c.seed_offset,
        c.attempts, c.failures, c.expirations, c.progress, c.leased_at, c.error
    """
)


@dataclass(frozen=True, slots=True)
class _Stored:
    """A result the one-statement path stored."""

    job_id: int
    iterations: int
    snapshot: SimChunk | None
    #: Which of the call's completions it was (a chunk may be named more than once).
    index: int


def _own_results_at_once(
    session: Session,
    node: Node,
    completions: Sequence[Completion],
    parsed: Sequence[ChunkResult | ResultInvalid],
    now: datetime,
    *,
    snapshots: bool,
) -> dict[int, _Stored]:
    """PostgreSQL: store, in one ``UPDATE ... FROM unnest(...)``, the results that need
    no judgement (a valid result for a chunk this node holds now, under the token it
    names, of a job its own owner submitted). Returns the chunks stored (as they are now);
    everything else (duplicates, late results, other users' jobs, checks) takes the
    general path."""
    if not session_is_postgres(session) or node.user_id is None or node.id is None:
        return {}
    rows: dict[int, tuple[str, ChunkResult, dict[str, Any], int]] = {}
    for index, (completion, result) in enumerate(zip(completions, parsed, strict=True)):
        cid = completion.chunk_id
        if (
            isinstance(result, ChunkResult)
            and isinstance(cid, int)
            and 0 < cid <= MAX_ROW_ID
            and cid not in rows
            and isinstance(completion.lease_token, str)
            # Within the columns' ranges (a chunk's size is an int4, its offset an int8);
            # anything else is judged (and refused) on the general path.
            and 0 < result.count <= MAX_ROW_ID
            and 0 <= result.seed_offset <= 2**63 - 1
        ):
            rows[cid] = (hash_token(completion.lease_token), result, result.to_dict(), index)
    if not rows:
        return {}
    ids = sorted(rows)
    stored = (
        session.connection()
        .execute(
            _OWN_RESULTS_STATEMENT,
            {
                "ids": ids,
                "hashes": [rows[i][0] for i in ids],
                "offsets": [rows[i][1].seed_offset for i in ids],
                "counts": [rows[i][1].count for i in ids],
                "results": json.dumps([rows[i][2] for i in ids], separators=(",", ":")),
                "node": node.id,
                "owner": node.user_id,
                "now": now,
            },
        )
        .all()
    )
    return {
        r.id: _Stored(
            r.job_id,
            r.iterations,
            _snapshot(r, rows[r.id][2], now) if snapshots else None,
            rows[r.id][3],
        )
        for r in stored
    }


def _snapshot(r: Any, result: dict[str, Any], now: datetime) -> SimChunk:
    """The chunk as the one-statement path left it (``r``: its RETURNING row)."""
    return SimChunk(
        **r._mapping,
        status=ChunkStatus.COMPLETED.value,
        result=result,
        computed_by=r.node_id,
        completed_at=now,
    )


def complete_chunks(
    session: Session,
    *,
    node: Node,
    completions: Sequence[Completion],
    policy: verification.VerifyPolicy | None = None,
    now: datetime | None = None,
    snapshots: bool = True,
) -> CompletionReport:
    """Record chunk results; idempotent. The report says what to add to each job's count
    after the commit. ``snapshots``: also return each counted chunk as it is now (for
    ``wowlab_chunk_completed`` listeners; building them costs CPU per chunk)."""
    now = now or utcnow()
    policy = policy or verification.VerifyPolicy()
    parsed: list[ChunkResult | ResultInvalid] = []
    for completion in completions:
        try:
            parsed.append(ChunkResult.from_dict(completion.result))
        except ResultInvalid as exc:
            parsed.append(exc)
    fast = _own_results_at_once(session, node, completions, parsed, now, snapshots=snapshots)
    named = Counter(c.chunk_id for c in completions)
    # A chunk stored above and named once needs nothing more; the other copies of a chunk
    # named again are judged (as duplicates of the stored one).
    chunks = _lock_chunks(
        session, sorted(cid for cid, n in named.items() if cid not in fast or n > 1)
    )
    submitters = (
        dict(
            session.execute(
                sa.select(col(SimJob.id), col(SimJob.user_id)).where(
                    col(SimJob.id).in_({c.job_id for c in chunks.values()})
                )
            ).all()
        )
        if chunks
        else {}
    )
    batch = _Batch(snapshots=snapshots)
    settled: set[int] = set()
    elapsed: list[tuple[int, float, int | None]] = []
    ordered: list[CompletionOutcome] = []
    # In order: once a chunk is settled, later copies (in this batch too) are duplicates.
    for index, (completion, result) in enumerate(zip(completions, parsed, strict=True)):
        if isinstance(result, ResultInvalid):
            ordered.append(
                CompletionOutcome(completion.chunk_id, Outcome.REJECTED.value, result.message)
            )
            continue
        taken = fast.get(completion.chunk_id)
        if taken is not None and taken.index == index:  # stored by the one-statement path
            del fast[completion.chunk_id]
            settled.add(completion.chunk_id)
            ordered.append(CompletionOutcome(completion.chunk_id, Outcome.ACCEPTED.value))
            if taken.snapshot is not None:
                batch.counted.append((taken.snapshot, result))
            batch.delta[taken.job_id] = batch.delta.get(taken.job_id, 0) + taken.iterations
            if completion.elapsed_seconds and completion.elapsed_seconds > 0:
                elapsed.append(
                    (taken.iterations, completion.elapsed_seconds, result.metrics.get("events"))
                )
            continue
        if completion.chunk_id in settled:
            ordered.append(
                CompletionOutcome(completion.chunk_id, Outcome.DUPLICATE.value, "already completed")
            )
            continue
        chunk = chunks.get(completion.chunk_id)
        submitter = submitters.get(chunk.job_id) if chunk is not None else None
        outcome = _judge(session, chunk, node, completion, result, submitter)
        ordered.append(outcome)
        if outcome.outcome != Outcome.ACCEPTED.value or chunk is None or submitter is None:
            continue
        settled.add(chunk.id or 0)
        session.expunge(chunk)
        stored = result.to_dict()
        if chunk.verify_state in VERIFYING_STATES:
            _replica_run(batch, chunk, node, result, stored, submitter, now)
        else:
            _first_run(session, batch, chunk, node, result, stored, submitter, policy, now)
        if completion.elapsed_seconds and completion.elapsed_seconds > 0:
            elapsed.append(
                (chunk.iterations, completion.elapsed_seconds, result.metrics.get("events"))
            )
    if batch.settle:
        session.flush()
        session.connection().execute(_SETTLE_STATEMENT, batch.settle)
    for node_id in batch.confirmed:
        verification.confirm(session, node_id=node_id)
    flagged: list[int] = []
    for liar_id, chunk_id, job_id in batch.liars:
        job = session.get(SimJob, job_id)
        if job is None or liar_id in flagged:
            continue
        for job_id, iterations in verification.flag_liar(
            session, liar_id=liar_id, job=job, chunk_id=chunk_id, now=now
        ).items():
            batch.delta[job_id] = batch.delta.get(job_id, 0) - iterations
            batch.requeued += 1
        flagged.append(liar_id)
    if elapsed:  # the caller saves the node (a persistent one: its session does)
        _update_throughput(node, elapsed)
    return CompletionReport(
        outcomes=ordered,
        completed=batch.counted,
        progress={job_id: n for job_id, n in batch.delta.items() if n},
        flagged_nodes=flagged,
        requeued=batch.requeued,
    )


_ADD_PROGRESS = (
    sa.update(SimJob)
    .where(
        col(SimJob.id) == sa.bindparam("a_job", type_=sa.Integer),
        # A merged job's count is exact (the merge recounts); a job cancelled or failed
        # after these results committed still counts them, as it would have before.
        col(SimJob.status) != JobStatus.COMPLETED.value,
    )
    .values(
        completed_iterations=SimJob.completed_iterations + sa.bindparam("a_n", type_=sa.Integer)
    )
    .returning(col(SimJob.completed_iterations), col(SimJob.total_iterations), col(SimJob.status))
)


def add_progress(conn: sa.Connection, delta: dict[int, int]) -> list[int]:
    """Add ``delta`` iterations to each job's completed count (not a merged job's: its
    count is exact); the active jobs this brought to their total (to merge).

    Called in a transaction of its own after the results' transaction committed, so the
    job row, which every completion of a job changes, is locked for one statement rather
    than across a whole completion; and a count that reaches the total means every result
    it counts is committed. Exactly one caller sees a job cross its total.
    """
    crossed: list[int] = []
    for job_id in sorted(delta):  # a fixed order: no deadlocks between completers
        if not delta[job_id]:
            continue
        row = conn.execute(_ADD_PROGRESS, {"a_job": job_id, "a_n": delta[job_id]}).first()
        if (
            row is not None
            and row[2] in ACTIVE_JOB_STATUSES
            and row[0] >= row[1] > row[0] - delta[job_id]
        ):
            crossed.append(job_id)
    return crossed


def unfinished_jobs(session: Session, *, quiet_since: datetime) -> list[int]:
    """Active jobs that should have been merged but were not: their count reached the
    total, or no chunk is waiting, running or being checked and the last result came
    before ``quiet_since`` (the process that counted it stopped before the count or the
    merge). The merge recounts them exactly."""
    open_chunk = sa.orm.aliased(SimChunk, name="open_chunk")
    done_chunk = sa.orm.aliased(SimChunk, name="done_chunk")
    rows = session.execute(
        sa.select(col(SimJob.id))
        .where(
            col(SimJob.status).in_(ACTIVE_JOB_STATUSES),
            sa.or_(
                col(SimJob.completed_iterations) >= col(SimJob.total_iterations),
                sa.and_(
                    sa.not_(
                        sa.exists().where(
                            col(open_chunk.job_id) == col(SimJob.id),
                            col(open_chunk.status).in_(OPEN_CHUNK_STATUSES),
                        )
                    ),
                    sa.exists().where(
                        col(done_chunk.job_id) == col(SimJob.id),
                        col(done_chunk.status) == ChunkStatus.COMPLETED.value,
                    ),
                    sa.select(sa.func.max(col(done_chunk.completed_at)))
                    .where(col(done_chunk.job_id) == col(SimJob.id))
                    .scalar_subquery()
                    < quiet_since,
                ),
            ),
        )
        .order_by(col(SimJob.id))
    ).all()
    return [r[0] for r in rows]


def _smoothed(old: float | None, new: float) -> float:
    return new if old is None else old + THROUGHPUT_SMOOTHING * (new - old)


def _update_throughput(node: Node, samples: list[tuple[int, float, int | None]]) -> None:
    seconds = sum(s for _, s, _ in samples)
    node.iterations_per_second = _smoothed(
        node.iterations_per_second, sum(i for i, _, _ in samples) / seconds
    )
    # Events per second carry over between configs (iterations per second do not). Planning
    # takes the slower of this and the submit-time measurement, so a node overstating its
    # speed cannot make chunks longer; it is bounded all the same.
    events = [e for _, _, e in samples if isinstance(e, int) and e > 0]
    if len(events) == len(samples):
        rate = min(max(sum(events) / seconds, 1.0), MAX_EVENTS_PER_SECOND)
        node.events_per_second = _smoothed(node.events_per_second, rate)


def merged_result(session: Session, *, job: SimJob) -> ChunkResult:
    """Merge a job's completed chunk results in seed order."""
    rows = session.exec(
        select(SimChunk.result)
        .where(col(SimChunk.job_id) == job.id, col(SimChunk.status) == ChunkStatus.COMPLETED.value)
        .order_by(col(SimChunk.seed_offset))
    ).all()
    known: set[str] = set()  # metric names checked already (the results repeat them)
    return merge_in_seed_order(ChunkResult.from_dict(r, known_names=known) for r in rows)


def fail_chunk(
    session: Session,
    *,
    node: Node,
    chunk_id: int,
    lease_token: str,
    error: str,
    over_budget: bool = False,
    now: datetime | None = None,
) -> SimJob | None:
    """Record a node's error for a chunk it holds. Returns the job if it failed because of it.

    The chunk goes back to the pool but never to this node again; the job fails once
    ``FAILED_NODES_TO_FAIL_JOB`` different nodes failed the chunk (or no other node could
    run it).

    ``over_budget``: the node stopped the chunk because it ran past its time budget. That
    is not the node's fault: the chunk is split in two smaller pending chunks and no
    failure is counted (a single iteration cannot be split, and counts as a failure; a
    chunk waiting for its check keeps its size and waits again).
    """
    now = now or utcnow()
    chunk = _lock_chunks(session, [chunk_id]).get(chunk_id)
    if (
        chunk is None
        or chunk.status != ChunkStatus.LEASED.value
        or not tokens_match(lease_token, chunk.lease_token_hash)
        or chunk.node_id != node.id
    ):
        raise LeaseLost(f"chunk {chunk_id} is not leased to this node")
    token_hash = chunk.lease_token_hash
    error = (error or "unknown error")[:1500]
    if over_budget and (chunk.iterations > 1 or chunk.verify_state in VERIFYING_STATES):
        _over_budget(session, chunk, error=f"over budget on node {node.name!r}: {error}")
        return None
    session.execute(
        sa.update(ChunkLease)
        .where(
            col(ChunkLease.chunk_id) == chunk_id,
            col(ChunkLease.node_id) == node.id,
            col(ChunkLease.token_hash) == token_hash,
        )
        .values(outcome=OUTCOME_FAILED)
        .execution_options(synchronize_session=False)
    )
    failed_on = {
        n
        for (n,) in session.execute(
            sa.select(col(ChunkLease.node_id)).where(
                col(ChunkLease.chunk_id) == chunk_id, col(ChunkLease.outcome) == OUTCOME_FAILED
            )
        ).all()
        if n is not None
    }
    failed_nodes = len(failed_on)
    chunk.failures += 1
    chunk.error = error
    chunk.lease_token_hash = None
    chunk.lease_expires_at = None
    chunk.lease_deadline_at = None
    chunk.progress = 0
    job = session.get(SimJob, chunk.job_id)
    if job is not None and (
        failed_nodes >= max(FAILED_NODES_TO_FAIL_JOB, job.max_attempts)
        or not _another_node_could_run(session, job, failed_on)
    ):
        chunk.status = ChunkStatus.FAILED.value
        session.add(chunk)
        fail_job(
            session,
            job=job,
            error=f"chunk {chunk.id} failed on {failed_nodes} "
            f"{'node' if failed_nodes == 1 else 'different nodes'} (no other node may run it); "
            f"last error from node {node.name!r}: {error}"
            if failed_nodes < max(FAILED_NODES_TO_FAIL_JOB, job.max_attempts)
            else f"chunk {chunk.id} failed on {failed_nodes} different nodes; last error from "
            f"node {node.name!r}: {error}",
            now=now,
        )
        return job
    waiting = chunk.verify_state in VERIFYING_STATES
    chunk.status = ChunkStatus.VERIFY.value if waiting else ChunkStatus.PENDING.value
    session.add(chunk)
    return None


def _over_budget(session: Session, chunk: SimChunk, *, error: str) -> None:
    """Cut a leased chunk in two pending halves (same iterations, same seeds); a check
    cannot be cut (the first result covers the whole chunk): it waits for another node."""
    chunk.error = error[:2000]
    chunk.lease_token_hash = None
    chunk.lease_expires_at = None
    chunk.lease_deadline_at = None
    chunk.progress = 0
    if chunk.verify_state in VERIFYING_STATES:
        chunk.status = ChunkStatus.VERIFY.value
        session.add(chunk)
        return
    first = -(-chunk.iterations // 2)
    second = ChunkPlan(seed_offset=chunk.seed_offset + first, iterations=chunk.iterations - first)
    chunk.iterations = first
    chunk.status = ChunkStatus.PENDING.value
    session.add(chunk)
    session.flush()
    job = session.get(SimJob, chunk.job_id)
    if job is not None:
        insert_chunks(session, job=job, plans=[second])


def _another_node_could_run(session: Session, job: SimJob, failed_on: set[int]) -> bool:
    """Whether an online node that has not failed this chunk may run the job's chunks.

    A chunk that failed on one node waits for a second opinion from another machine; but
    when no other node could ever give it (a pool of one), waiting would hang the job.
    """
    return any(n.id not in failed_on for n in online_nodes_for(session, job=job))


def _checker_online(session: Session, job: SimJob, computer: Node) -> bool:
    """Whether a node of another owner than ``computer``'s could check its result now."""
    return any(
        n.user_id != computer.user_id and n.flagged_at is None
        for n in online_nodes_for(session, job=job)
    )


__all__ = [
    "FAILED_NODES_TO_FAIL_JOB",
    "CompletionReport",
    "add_progress",
    "complete_chunks",
    "fail_chunk",
    "is_row_id",
    "merged_result",
    "unfinished_jobs",
]
