"""Leasing chunks to nodes: the lease call, heartbeats, hand-backs and expiry.

Chunks are pulled: a node with free workers leases pending chunks of jobs whose owners may
use it, atomically (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite ``BEGIN IMMEDIATE``, see
:func:`wowlab_core.db.write_session`), with a lease token, a deadline that heartbeats push
back, and a hard deadline they cannot push past. Leases belong to their token, not to
the node's id:

- a heartbeat names the leases the node is running; only those are extended, every other
  lease of that node is handed back (a restarted node, or a lease call whose answer was
  lost, never keeps a chunk);
- a node holds at most ``max_parallel`` leases at once;
- a chunk a node failed is not given to that node again;
- a node serves its owner's jobs first, then the other users' in turn (the user with the
  fewest chunks in flight first);
- a chunk waiting for verification goes to a node of another owner than the one that
  computed it, preferably the submitter's own or a trusted node.

Every function works inside the caller's session and transaction; the caller commits.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, SQLModel, col, select

from wowlab_core.access import allowed_clause, grants_of
from wowlab_core.db import rowcount, session_is_postgres
from wowlab_core.job_states import ACTIVE_JOB_STATUSES, fail_job
from wowlab_core.models import (
    AccessType,
    ChunkLease,
    ChunkStatus,
    JobStatus,
    Node,
    SimChunk,
    SimJob,
    User,
    utcnow,
)
from wowlab_core.planning import DEFAULT_WORKER_THROUGHPUT, chunk_budget_seconds, iteration_rate
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Lease, RunningChunk
from wowlab_core.tokens import hash_token

#: A chunk whose lease ran out this many times fails its job (a config that kills nodes).
MAX_EXPIRATIONS = 5
#: A lease's hard deadline is this many times the chunk's expected run time ...
DEADLINE_FACTOR = 10.0
#: ... but never sooner than this after the lease (the default; the coordinator's
#: settings can change it) ...
MIN_DEADLINE_SECONDS = 600.0
#: ... nor later than this.
MAX_DEADLINE_SECONDS = 6 * 3600.0
#: How long a verification run waits for the submitter's own or a trusted node before
#: any other eligible node (of another owner than the first run's) may take it.
VERIFY_GRACE_SECONDS = 10.0
#: Consecutive confirmed results after which a node counts as trusted.
TRUSTED_SCORE = 10
#: Lease-history outcome of a chunk the node reported an error for.
OUTCOME_FAILED = "failed"
#: Verification states of a chunk that is waiting for (or running) another node's run.
VERIFYING_STATES = ("pending", "tiebreak")

# The column type of every timestamp (sqlmodel's UTC-aware DateTime).
_TIMESTAMP = SQLModel.metadata.tables["sim_chunks"].c.leased_at.type


def is_trusted(node: Node) -> bool:
    """Whether other nodes have confirmed enough of this node's results in a row."""
    return node.flagged_at is None and node.trust_score >= TRUSTED_SCORE


def expected_chunk_seconds(iterations: int, node: Node, rate: float | None = None) -> float:
    """How long ``iterations`` should take one of ``node``'s workers (``rate``: the job's
    expected iterations per second on it, when its cost is known)."""
    rate = rate or node.iterations_per_second or DEFAULT_WORKER_THROUGHPUT
    return iterations / max(rate, 1e-6)


def hard_deadline(
    iterations: int,
    node: Node,
    now: datetime,
    *,
    min_seconds: float = MIN_DEADLINE_SECONDS,
    rate: float | None = None,
) -> datetime:
    """The latest time a lease of ``iterations`` iterations may last until. It is never
    before the end of the node's own time budget for the chunk (at most 600 s)."""
    seconds = DEADLINE_FACTOR * expected_chunk_seconds(iterations, node, rate)
    return now + timedelta(seconds=min(max(seconds, min_seconds), MAX_DEADLINE_SECONDS))


def _back_to_waiting() -> Any:
    """SQL: the status a chunk returns to when its lease ends without a result."""
    return sa.case(
        (col(SimChunk.verify_state).in_(VERIFYING_STATES), ChunkStatus.VERIFY.value),
        else_=ChunkStatus.PENDING.value,
    )


def runs_engine_of(node: Node, job: SimJob) -> bool:
    """Whether ``node`` advertised the job's engine at the job's version (or nothing)."""
    engines = node.engines
    if not isinstance(engines, dict):
        return True
    version = engines.get(job.engine)
    return version is not None and (job.engine_version is None or version == job.engine_version)


def online_nodes_for(session: Session, *, job: SimJob) -> list[Node]:
    """The online nodes that may run ``job``'s chunks (grants, the job's node choice,
    engines; plugins' vetoes are not asked)."""
    owner = session.get(User, job.user_id)
    if owner is None:
        return []
    from wowlab_core.access import usable_nodes

    return [
        n
        for n in usable_nodes(session, owner, online_only=True, include_public=job.allow_public)
        if (not job.own_nodes_only or n.user_id == owner.id) and runs_engine_of(n, job)
    ]


# --- which jobs a node may work for ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Candidate:
    job_id: int
    user_id: int
    has_pending: bool
    has_verify: bool
    #: What a lease of the job needs: its seed, engine and status, and its cost.
    seed: int = 0
    engine: str = ""
    status: str = ""
    events_per_iteration: float | None = None
    seconds_per_iteration: float | None = None


def _engine_key(node: Node) -> tuple[tuple[str, str], ...] | None:
    """The node's engines as a hashable key (None: it did not say)."""
    engines = node.engines
    if not isinstance(engines, dict):
        return None
    return tuple(
        (name, version)
        for name, version in sorted(engines.items())
        if isinstance(name, str) and isinstance(version, str)
    )


def _engine_filter(engines: tuple[tuple[str, str], ...] | None) -> sa.ColumnElement[bool]:
    if engines is None:
        return sa.true()  # the node did not say: it gets any chunk, as before capabilities
    pairs = [
        sa.and_(
            col(SimJob.engine) == name,
            sa.or_(col(SimJob.engine_version).is_(None), col(SimJob.engine_version) == version),
        )
        for name, version in engines
    ]
    return sa.or_(*pairs) if pairs else sa.false()


def _waiting_exists(status: str) -> sa.ColumnElement[bool]:
    c = sa.orm.aliased(SimChunk, name=f"waiting_{status}")
    return (
        sa.exists()
        .where(col(c.job_id) == col(SimJob.id), col(c.status) == status)
        .correlate_except(c)
    )


@lru_cache(maxsize=64)
def _candidates_statement(
    engines: tuple[tuple[str, str], ...] | None, flagged: bool, group_hooks: bool
) -> Any:
    """The candidate-jobs query for nodes of this kind, built once (bind parameters
    ``c_node`` and ``c_owner``): building it costs more CPU than running it."""
    owner = sa.bindparam("c_owner", type_=sa.Integer)
    allowed = allowed_clause(
        node_id=sa.bindparam("c_node", type_=sa.Integer),
        owner_id=owner,
        user_id=SimJob.user_id,
        include_public=col(SimJob.allow_public),
    )
    conditions: list[sa.ColumnElement[bool]] = [
        col(SimJob.status).in_(ACTIVE_JOB_STATUSES),
        sa.or_(sa.not_(col(SimJob.own_nodes_only)), col(SimJob.user_id) == owner),
        _engine_filter(engines),
    ]
    if flagged:
        conditions.append(col(SimJob.user_id) == owner)
    if not group_hooks:
        conditions.append(allowed)
    pending, verify = _waiting_exists("pending"), _waiting_exists("verify")
    held = sa.orm.aliased(SimChunk, name="held")
    outstanding = (
        sa.select(sa.func.count())
        .where(
            col(held.node_id) == sa.bindparam("c_node", type_=sa.Integer),
            col(held.lease_token_hash).isnot(None),  # ix_sim_chunks_held
            col(held.status) == ChunkStatus.LEASED.value,
        )
        .scalar_subquery()
    )
    return (
        sa.select(
            col(SimJob.id),
            col(SimJob.user_id),
            pending.label("has_pending"),
            verify.label("has_verify"),
            # Asked only when plugins' groups may widen grants (else it is in the WHERE).
            (allowed if group_hooks else sa.true()).label("allowed"),
            col(SimJob.seed),
            col(SimJob.engine),
            col(SimJob.status),
            col(SimJob.events_per_iteration),
            col(SimJob.seconds_per_iteration),
            outstanding.label("outstanding"),
        )
        .where(*conditions, sa.or_(pending, verify))
        .order_by(col(SimJob.id))
    )


def _candidate_jobs(
    session: Session, node: Node, hooks: Hooks | None
) -> tuple[list[_Candidate], int]:
    """Active jobs with waiting chunks that ``node`` may work for, plugins asked set-wise;
    and how many leases the node holds now (0 when there is no candidate)."""
    group_hooks = hooks is not None and hooks.has_user_groups()
    # On the session's connection: the ORM's execute costs more CPU than this query.
    statement = _candidates_statement(_engine_key(node), node.flagged_at is not None, group_hooks)
    conn = session.connection()
    rows = conn.execute(statement, {"c_node": node.id, "c_owner": node.user_id}).all()
    outstanding = int(rows[0][10]) if rows else 0
    candidates = [
        _Candidate(r[0], r[1], bool(r[2]), bool(r[3]), r[5], r[6], r[7], r[8], r[9]) for r in rows
    ]
    if hooks is None or not (group_hooks or hooks.has_access_veto()) or not candidates:
        return candidates, outstanding
    granted = {r[0]: bool(r[4]) for r in rows}
    return _ask_plugins(session, node, hooks, candidates, granted), outstanding


def _ask_plugins(
    session: Session,
    node: Node,
    hooks: Hooks,
    candidates: list[_Candidate],
    granted: dict[int, bool],
) -> list[_Candidate]:
    """Outside guild memberships widen guild grants; vetoes narrow. Each hook is asked
    once per user (groups) and once per job (vetoes), whatever the number of chunks."""
    grants = grants_of(session, node.id or 0)
    guild_targets = {
        g.target_id for g in grants if g.access_type == AccessType.GUILD.value and g.target_id
    }
    users = {
        u.id: u
        for u in session.exec(
            select(User).where(col(User.id).in_({c.user_id for c in candidates}))
        ).all()
    }
    jobs = (
        {
            j.id: j
            for j in session.exec(
                select(SimJob).where(col(SimJob.id).in_([c.job_id for c in candidates]))
            ).all()
        }
        if hooks.has_access_veto()
        else {}
    )
    in_groups: dict[int, bool] = {}
    kept: list[_Candidate] = []
    for cand in candidates:
        user = users.get(cand.user_id)
        if user is None:
            continue
        if not granted[cand.job_id]:
            if cand.user_id not in in_groups:
                in_groups[cand.user_id] = bool(guild_targets & hooks.user_groups(user=user))
            if not in_groups[cand.user_id]:
                continue
        if hooks.has_access_veto() and not hooks.can_use_node(
            user=user, node=node, grants=grants, job=jobs.get(cand.job_id)
        ):
            continue
        kept.append(cand)
    return kept


# --- sharing the node's workers between users -----------------------------------------


def _in_flight_per_user(session: Session, user_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(set(user_ids))
    rows = session.execute(
        sa.select(col(SimJob.user_id), sa.func.count())
        .select_from(SimChunk)
        .join(SimJob, col(SimJob.id) == col(SimChunk.job_id))
        .where(col(SimChunk.status) == ChunkStatus.LEASED.value, col(SimJob.user_id).in_(ids))
        .group_by(col(SimJob.user_id))
    ).all()
    return {user_id: int(n) for user_id, n in rows}


def fair_shares(limit: int, loads: dict[int, int]) -> dict[int, int]:
    """Give ``limit`` workers to users one at a time, always to the least loaded (ties:
    the lower user id): round robin that also evens out chunks already in flight."""
    shares = dict.fromkeys(loads, 0)
    for _ in range(limit):
        if not shares:
            break
        user = min(shares, key=lambda u: (loads[u] + shares[u], u))
        shares[user] += 1
    return shares


# --- the lease statement ---------------------------------------------------------------


def _failed_here() -> sa.ColumnElement[bool]:
    lease = sa.orm.aliased(ChunkLease, name="failed_lease")
    return (
        sa.exists()
        .where(
            col(lease.chunk_id) == col(SimChunk.id),
            col(lease.node_id) == sa.bindparam("p_node", type_=sa.Integer),
            col(lease.outcome) == OUTCOME_FAILED,
        )
        .correlate_except(lease)
    )


def _verify_allowed() -> sa.ColumnElement[bool]:
    """SQL: this node may run the verification of a chunk (bind parameters ``p_node``,
    ``p_owner`` and ``p_verify_since``)."""
    other = sa.orm.aliased(Node, name="first_runner")
    same_owner = (
        sa.exists()
        .where(
            sa.or_(
                col(other.id) == col(SimChunk.computed_by),
                col(other.id) == col(SimChunk.alt_node_id),
            ),
            col(other.user_id) == sa.bindparam("p_owner", type_=sa.Integer),
        )
        .correlate_except(other)
    )
    p_node = sa.bindparam("p_node", type_=sa.Integer)
    return sa.and_(
        col(SimChunk.computed_by) != p_node,
        sa.or_(col(SimChunk.alt_node_id).is_(None), col(SimChunk.alt_node_id) != p_node),
        sa.not_(same_owner),
        col(SimChunk.completed_at) <= sa.bindparam("p_verify_since", type_=_TIMESTAMP),
    )


@lru_cache(maxsize=8)
def _lease_statement(postgres: bool, status: str) -> Any:
    """The lease UPDATE for ``pending`` or ``verify`` chunks, built once per database:
    everything that varies is a bind parameter, so SQLAlchemy compiles it once.

    On PostgreSQL it is the whole lease in one statement: it also sets each lease's hard
    deadline (from the job's expected seconds per iteration on this node, bind arrays
    ``p_rate_jobs`` / ``p_rate_spi``) and writes the lease history (``chunk_leases``).
    """
    conditions = [
        col(SimChunk.status) == status,
        col(SimChunk.job_id).in_(sa.bindparam("p_jobs", expanding=True)),
        sa.not_(_failed_here()),
    ]
    if status == ChunkStatus.VERIFY.value:
        conditions.append(_verify_allowed())
    pick = (
        select(SimChunk.id)
        .where(*conditions)
        .order_by(col(SimChunk.job_id), col(SimChunk.seed_offset))
        .limit(sa.bindparam("p_limit", type_=sa.Integer))
    )
    if postgres:
        # MATERIALIZED: a LIMIT ... FOR UPDATE subquery inside IN may be re-run by the
        # planner and then return more than ``limit`` rows.
        picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        return _lease_in_one_statement(picked, status)
    return _lease_update(pick.cte("picked"), status).returning(*_LEASED_COLUMNS)


#: What a lease statement returns of each chunk it leased.
_LEASED_COLUMNS = (
    col(SimChunk.id),
    col(SimChunk.job_id),
    col(SimChunk.config_hash),
    col(SimChunk.seed_offset),
    col(SimChunk.iterations),
)


def _lease_update(picked: Any, status: str, *where: Any) -> Any:
    """The UPDATE that leases the ``picked`` chunks still in ``status`` (bind parameters
    ``p_node_set``, ``p_token_hash``, ``p_expires``, ``p_now``)."""
    return (
        sa.update(SimChunk)
        .where(col(SimChunk.id).in_(select(picked.c.id)), col(SimChunk.status) == status, *where)
        .values(
            status=ChunkStatus.LEASED.value,
            node_id=sa.bindparam("p_node_set", type_=sa.Integer),
            attempts=SimChunk.attempts + 1,
            lease_token_hash=sa.bindparam("p_token_hash", type_=sa.String),
            lease_expires_at=sa.bindparam("p_expires", type_=_TIMESTAMP),
            leased_at=sa.bindparam("p_now", type_=_TIMESTAMP),
            progress=0,
        )
    )


def _lease_in_one_statement(picked: Any, status: str) -> Any:
    """PostgreSQL: lease the picked chunks, set their hard deadlines and write their lease
    history, in one statement (see :func:`hard_deadline` for the formula)."""
    rates = sa.select(
        sa.func.unnest(sa.bindparam("p_rate_jobs", type_=ARRAY(sa.Integer))).label("job_id"),
        sa.func.unnest(sa.bindparam("p_rate_spi", type_=ARRAY(sa.Float))).label("spi"),
    ).cte("rates")
    seconds = sa.func.least(
        sa.func.greatest(
            DEADLINE_FACTOR * SimChunk.iterations * rates.c.spi,
            sa.bindparam("p_min_deadline", type_=sa.Float),
        ),
        MAX_DEADLINE_SECONDS,
    )
    p_now = sa.bindparam("p_now", type_=_TIMESTAMP)
    leased = (
        _lease_update(picked, status, col(SimChunk.job_id) == rates.c.job_id)
        .values(lease_deadline_at=p_now + sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds))
        .returning(*_LEASED_COLUMNS, col(SimChunk.lease_deadline_at))
        .cte("leased")
    )
    history = (
        sa.insert(ChunkLease)
        .from_select(
            ["chunk_id", "node_id", "token_hash", "leased_at"],
            sa.select(
                leased.c.id,
                sa.bindparam("p_node_set", type_=sa.Integer),
                sa.bindparam("p_token_hash", type_=sa.String),
                p_now,
            ),
        )
        .cte("history")
    )
    return sa.select(*leased.c).add_cte(history)


def lease_chunks(
    session: Session,
    *,
    node: Node,
    limit: int,
    lease_seconds: float,
    hooks: Hooks | None = None,
    now: datetime | None = None,
    min_deadline_seconds: float = MIN_DEADLINE_SECONDS,
) -> list[Lease]:
    """Lease up to ``limit`` waiting chunks that ``node`` may run. One token per call.

    The node never holds more than its ``max_parallel`` leases; its owner's jobs come
    first, then the other users' in turn.
    """
    if limit <= 0 or node.user_id is None or node.max_parallel <= 0:
        return []
    candidates, outstanding = _candidate_jobs(session, node, hooks)
    limit = min(limit, node.max_parallel - outstanding)
    if limit <= 0 or not candidates:
        return []
    now = now or utcnow()
    token = secrets.token_urlsafe(24)
    params: dict[str, Any] = {
        "p_node": node.id,
        "p_owner": node.user_id,
        "p_node_set": node.id,
        "p_token_hash": hash_token(token),
        "p_expires": now + timedelta(seconds=lease_seconds),
        "p_now": now,
    }
    postgres = session_is_postgres(session)
    conn = session.connection()
    trusted = is_trusted(node)
    rates = {
        c.job_id: iteration_rate(
            events_per_iteration=c.events_per_iteration,
            seconds_per_iteration=c.seconds_per_iteration,
            worker_events_per_second=node.events_per_second,
        )
        for c in candidates
    }
    if postgres:  # the deadlines are set by the lease statement itself
        params["p_rate_jobs"] = list(rates)
        params["p_rate_spi"] = [expected_chunk_seconds(1, node, r) for r in rates.values()]
        params["p_min_deadline"] = min_deadline_seconds

    def take(cands: list[_Candidate], n: int, own: bool) -> list[Any]:
        rows: list[Any] = []
        verify_jobs = [c.job_id for c in cands if c.has_verify]
        if verify_jobs and node.flagged_at is None:
            since = now if own or trusted else now - timedelta(seconds=VERIFY_GRACE_SECONDS)
            rows += conn.execute(
                _lease_statement(postgres, ChunkStatus.VERIFY.value),
                {**params, "p_jobs": verify_jobs, "p_limit": n, "p_verify_since": since},
            ).all()
        pending_jobs = [c.job_id for c in cands if c.has_pending]
        if pending_jobs and len(rows) < n:
            rows += conn.execute(
                _lease_statement(postgres, ChunkStatus.PENDING.value),
                {**params, "p_jobs": pending_jobs, "p_limit": n - len(rows)},
            ).all()
        return rows

    by_user: dict[int, list[_Candidate]] = {}
    for cand in candidates:
        by_user.setdefault(cand.user_id, []).append(cand)
    rows: list[Any] = []
    own_jobs = by_user.pop(node.user_id, [])
    if own_jobs:
        rows += take(own_jobs, limit, own=True)
    in_flight = _in_flight_per_user(session, by_user) if len(by_user) > 1 else {}
    loads = {user_id: in_flight.get(user_id, 0) for user_id in by_user}
    while len(rows) < limit and loads:
        progress = False
        for user_id, share in sorted(fair_shares(limit - len(rows), loads).items()):
            if share <= 0:
                continue
            got = take(by_user[user_id], share, own=False)
            rows += got
            loads[user_id] += len(got)
            progress = progress or bool(got)
            if len(got) < share:
                del loads[user_id]  # nothing more to take from this user's jobs
        if not progress:
            break
    if not rows:
        return []
    jobs = {c.job_id: c for c in candidates}
    if postgres:
        deadlines = {r[0]: r[5] for r in rows}
    else:
        deadlines = _record_leases(
            session,
            node=node,
            rows=rows,
            rates=rates,
            params=params,
            now=now,
            min_deadline_seconds=min_deadline_seconds,
        )
    job_ids = sorted({r[1] for r in rows})
    starting = [j for j in job_ids if jobs[j].status == JobStatus.PENDING.value]
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
            engine=jobs[r[1]].engine,
            seed=jobs[r[1]].seed,
            seed_offset=r[3],
            iterations=r[4],
            lease_token=token,
            expires_at=params["p_expires"],
            deadline_at=deadlines[r[0]],
            budget_seconds=chunk_budget_seconds(r[4], rates[r[1]]),
        )
        for r in sorted(rows, key=lambda r: (r[1], r[3]))
    ]


def _record_leases(
    session: Session,
    *,
    node: Node,
    rows: Sequence[Any],
    rates: dict[int, float | None],
    params: dict[str, Any],
    now: datetime,
    min_deadline_seconds: float,
) -> dict[int, datetime]:
    """SQLite: set the leases' hard deadlines and write their history (PostgreSQL's lease
    statement does both itself). Returns each chunk's deadline."""
    conn = session.connection()
    deadlines = {
        (job_id, iterations): hard_deadline(
            iterations, node, now, min_seconds=min_deadline_seconds, rate=rates[job_id]
        )
        for job_id, iterations in {(r[1], r[4]) for r in rows}
    }
    for (job_id, iterations), deadline in deadlines.items():
        conn.execute(
            sa.update(SimChunk)
            .where(
                col(SimChunk.id).in_([r[0] for r in rows if (r[1], r[4]) == (job_id, iterations)]),
                col(SimChunk.lease_token_hash) == params["p_token_hash"],
            )
            .values(lease_deadline_at=deadline)
            .execution_options(synchronize_session=False)
        )
    conn.execute(
        sa.insert(ChunkLease),
        [
            {
                "chunk_id": r[0],
                "node_id": node.id,
                "token_hash": params["p_token_hash"],
                "leased_at": now,
            }
            for r in rows
        ],
    )
    return {r[0]: deadlines[(r[1], r[4])] for r in rows}


# --- heartbeats, hand-backs, expiry ----------------------------------------------------


@dataclass(frozen=True)
class BeatOutcome:
    """What a heartbeat did: chunks the node should stop, and leases handed back."""

    cancelled: list[int]
    released: list[int]


def _release_statement(ids: Sequence[int], node: Node | None) -> Any:
    """Hand leased chunks back (``node``: only its own; None: the caller adds a
    condition on the chunks' nodes)."""
    mine = col(SimChunk.node_id) == node.id if node is not None else sa.true()
    return (
        sa.update(SimChunk)
        .where(
            col(SimChunk.id).in_(list(ids)),
            mine,
            col(SimChunk.status) == ChunkStatus.LEASED.value,
        )
        .values(
            status=_back_to_waiting(),
            attempts=sa.case((col(SimChunk.attempts) > 0, SimChunk.attempts - 1), else_=0),
            lease_token_hash=None,
            lease_expires_at=None,
            lease_deadline_at=None,
            progress=0,
        )
        .execution_options(synchronize_session=False)
    )


def _forget_cancelled_leases(session: Session, node: Node, ids: Sequence[int]) -> None:
    if ids:
        session.execute(
            sa.update(SimChunk)
            .where(
                col(SimChunk.id).in_(list(ids)),
                col(SimChunk.node_id) == node.id,
                col(SimChunk.status) == ChunkStatus.CANCELLED.value,
            )
            .values(lease_token_hash=None)
            .execution_options(synchronize_session=False)
        )


def beat(
    session: Session,
    *,
    node: Node,
    running: Sequence[RunningChunk],
    lease_seconds: float,
    now: datetime | None = None,
) -> BeatOutcome:
    """A heartbeat: extend the leases named in ``running`` (never past their hard
    deadline), record their progress, and hand back every other lease of ``node``."""
    [outcome] = beat_many(session, [(node, running)], lease_seconds=lease_seconds, now=now)
    return outcome


_CHUNK_TABLE: sa.Table = SQLModel.metadata.tables["sim_chunks"]
#: What :func:`beat_many` reads of a chunk a node holds (a lease, or a cancelled chunk the
#: node is not yet told of), built once ...
HELD_COLUMNS = (
    _CHUNK_TABLE.c.id,
    _CHUNK_TABLE.c.status,
    _CHUNK_TABLE.c.lease_token_hash,
    _CHUNK_TABLE.c.lease_deadline_at,
    _CHUNK_TABLE.c.iterations,
)
#: ... and which chunks those are.
HELD_CONDITIONS = (
    _CHUNK_TABLE.c.lease_token_hash.isnot(None),  # ix_sim_chunks_held
    _CHUNK_TABLE.c.status.in_((ChunkStatus.LEASED.value, ChunkStatus.CANCELLED.value)),
)
_HELD_BY_NODES = sa.select(_CHUNK_TABLE.c.node_id, *HELD_COLUMNS).where(
    _CHUNK_TABLE.c.node_id.in_(sa.bindparam("node_ids", expanding=True)), *HELD_CONDITIONS
)
#: A chunk a node holds, as :data:`HELD_COLUMNS` reads it.
Held = tuple[int, str, str, datetime | None, int]


def beat_many(
    session: Session,
    beats: Sequence[tuple[Node, Sequence[RunningChunk]]],
    *,
    lease_seconds: float,
    now: datetime | None = None,
    held_by: Mapping[int, Sequence[Held]] | None = None,
) -> list[BeatOutcome]:
    """Heartbeats of several nodes (each at most once) in a fixed number of statements:
    one read of the chunks they hold (none when the caller read them with the nodes:
    ``held_by``, by node id, as :data:`HELD_COLUMNS`), one executemany for the
    extensions, one update for the hand-backs, one for the cancelled leases they are now
    told of."""
    now = now or utcnow()
    if held_by is None:
        read: dict[int, list[Held]] = {}
        node_ids = [node.id for node, _ in beats]
        if node_ids:
            for row in session.connection().execute(_HELD_BY_NODES, {"node_ids": node_ids}):
                read.setdefault(row[0], []).append(row[1:])
        held_by = read
    extend: list[dict[str, Any]] = []
    release: list[tuple[int, int]] = []
    forget: list[tuple[int, int]] = []
    outcomes: list[BeatOutcome] = []
    for node, running in beats:
        node_id = node.id or 0
        named = {r.chunk_id: r for r in running if isinstance(r.chunk_id, int)}
        kept: set[int] = set()
        released: list[int] = []
        for chunk_id, status, token_hash, deadline, iterations in held_by.get(node_id, []):
            if status == ChunkStatus.CANCELLED.value:
                forget.append((chunk_id, node_id))
                continue
            mine = named.get(chunk_id)
            if mine is None or not hmac.compare_digest(
                hash_token(str(mine.lease_token)), token_hash or ""
            ):
                released.append(chunk_id)
                continue
            if deadline is not None and deadline <= now:
                continue  # past its hard deadline: the reaper takes it back; the node stops
            done = mine.iterations_done if isinstance(mine.iterations_done, int) else 0
            expires = now + timedelta(seconds=lease_seconds)
            extend.append(
                {
                    "b_id": chunk_id,
                    "b_node": node_id,
                    "b_expires": min(expires, deadline) if deadline is not None else expires,
                    "b_progress": min(max(done, 0), iterations),
                }
            )
            kept.add(chunk_id)
        release.extend((chunk_id, node_id) for chunk_id in released)
        outcomes.append(BeatOutcome(cancelled=sorted(set(named) - kept), released=sorted(released)))
    if extend:
        session.connection().execute(_EXTEND_STATEMENT, extend)
    if release:
        session.execute(
            _release_statement([c for c, _ in release], None).where(
                sa.tuple_(col(SimChunk.id), col(SimChunk.node_id)).in_(release)
            )
        )
    if forget:
        session.execute(
            sa.update(SimChunk)
            .where(
                sa.tuple_(col(SimChunk.id), col(SimChunk.node_id)).in_(forget),
                col(SimChunk.status) == ChunkStatus.CANCELLED.value,
            )
            .values(lease_token_hash=None)
            .execution_options(synchronize_session=False)
        )
    return outcomes


_EXTEND_STATEMENT = (
    sa.update(SimChunk)
    .where(
        col(SimChunk.id) == sa.bindparam("b_id"),
        col(SimChunk.node_id) == sa.bindparam("b_node"),
        col(SimChunk.status) == ChunkStatus.LEASED.value,
    )
    .values(
        lease_expires_at=sa.bindparam("b_expires", type_=_TIMESTAMP),
        progress=sa.bindparam("b_progress", type_=sa.Integer),
    )
)


def release_chunks(
    session: Session, *, node: Node, chunk_ids: Iterable[int], lease_token: str
) -> int:
    """Hand leased chunks back without counting an attempt (a node stopping cleanly)."""
    ids = [i for i in chunk_ids if isinstance(i, int) and 0 < i <= 2**31 - 1]
    if not ids:
        return 0
    result = session.execute(
        _release_statement(ids, node).where(
            col(SimChunk.lease_token_hash) == hash_token(lease_token)
        )
    )
    _forget_cancelled_leases(session, node, ids)
    return rowcount(result)


def requeue_expired(session: Session, *, now: datetime | None = None) -> tuple[int, list[SimJob]]:
    """Return chunks whose lease ran out to waiting; fail jobs whose chunk keeps expiring.

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
            status=_back_to_waiting(),
            lease_token_hash=None,
            lease_expires_at=None,
            lease_deadline_at=None,
            progress=0,
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


__all__ = [
    "DEADLINE_FACTOR",
    "HELD_COLUMNS",
    "HELD_CONDITIONS",
    "MAX_EXPIRATIONS",
    "MIN_DEADLINE_SECONDS",
    "OUTCOME_FAILED",
    "TRUSTED_SCORE",
    "VERIFYING_STATES",
    "VERIFY_GRACE_SECONDS",
    "BeatOutcome",
    "Held",
    "beat",
    "beat_many",
    "expected_chunk_seconds",
    "fair_shares",
    "hard_deadline",
    "is_trusted",
    "lease_chunks",
    "online_nodes_for",
    "release_chunks",
    "requeue_expired",
    "runs_engine_of",
]
