"""The coordinator: the node-facing operations over the database.

Every transport (local, HTTP, MQTT, ...) calls these methods and nothing else. Each call
authenticates the node by its token, runs in one short transaction, and announces events
(node claimed, chunk completed, job finished) to plugins only after the commit.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlmodel import Session, col, select

from wowlab_core import nodes as node_ops
from wowlab_core import request_keys, scheduler
from wowlab_core.access import sharing_summary
from wowlab_core.claim_codes import DEFAULT_LIFETIME
from wowlab_core.completions import add_progress, unfinished_jobs
from wowlab_core.db import is_postgres, read_session, write_session
from wowlab_core.errors import InvalidRequest, NotFound, WowlabError
from wowlab_core.job_states import ACTIVE_JOB_STATUSES, OPEN_CHUNK_STATUSES
from wowlab_core.jobs import finalize_job
from wowlab_core.models import (
    ChunkLease,
    Node,
    NodeStatus,
    SimChunk,
    SimConfig,
    SimJob,
    utcnow,
)
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import (
    ClaimStatus,
    Completion,
    CompletionOutcome,
    ConfigPayload,
    FailReason,
    Heartbeat,
    HeartbeatReply,
    Lease,
    NodeCredentials,
    NodeInfo,
    Registration,
)
from wowlab_core.request_keys import Keyed, RequestRepeated
from wowlab_core.verification import DEFAULT_VERIFY_RATE, VerifyPolicy, accept_stale_checks
from wowlab_core.wakeups import WORK, Wakeups

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_LEASE_BATCH = 256
#: How often (at most) the reaper looks for jobs left unmerged ...
UNFINISHED_SWEEP_SECONDS = 10.0
#: ... whose last result is at least this old.
UNFINISHED_QUIET_SECONDS = 30.0
MAX_COMPLETION_BATCH = 256


@dataclass(frozen=True)
class CoordinatorSettings:
    """Timings and bounds of the coordinator."""

    lease_seconds: float = 60.0
    heartbeat_seconds: float = 15.0
    #: A node not heard of for this long is offline.
    offline_after_seconds: float = 60.0
    #: How often (at most) a call also requeues expired leases and marks silent nodes.
    reap_interval_seconds: float = 1.0
    claim_lifetime: timedelta = field(default=DEFAULT_LIFETIME)
    #: Share of results of nodes the submitter does not own that are run again elsewhere
    #: (besides the first result of each node for each user, which always is).
    verify_rate: float = DEFAULT_VERIFY_RATE
    #: No lease's hard deadline is sooner than this after it was handed out.
    min_lease_deadline_seconds: float = 600.0
    #: A result waiting this long for a check nobody takes counts unchecked.
    verify_timeout_seconds: float = 600.0

    @classmethod
    def from_env(cls) -> CoordinatorSettings:
        """Defaults, overridden by ``WOWLAB_LEASE_SECONDS``, ``WOWLAB_HEARTBEAT_SECONDS``,
        ``WOWLAB_OFFLINE_AFTER_SECONDS``, ``WOWLAB_CLAIM_LIFETIME_SECONDS`` and
        ``WOWLAB_VERIFY_RATE`` (0 to 1)."""
        defaults = cls()

        def number(name: str, default: float) -> float:
            raw = os.environ.get(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise InvalidRequest(f"{name} must be a number of seconds, got {raw!r}") from None
            if value <= 0:
                raise InvalidRequest(f"{name} must be positive, got {raw!r}")
            return value

        rate_raw = os.environ.get("WOWLAB_VERIFY_RATE")
        verify_rate = defaults.verify_rate
        if rate_raw is not None:
            try:
                verify_rate = float(rate_raw)
            except ValueError:
                verify_rate = -1.0
            if not 0.0 <= verify_rate <= 1.0:
                raise InvalidRequest(
                    f"WOWLAB_VERIFY_RATE must be a number from 0 to 1, got {rate_raw!r}"
                )
        return cls(
            verify_rate=verify_rate,
            lease_seconds=number("WOWLAB_LEASE_SECONDS", defaults.lease_seconds),
            heartbeat_seconds=number("WOWLAB_HEARTBEAT_SECONDS", defaults.heartbeat_seconds),
            offline_after_seconds=number(
                "WOWLAB_OFFLINE_AFTER_SECONDS", defaults.offline_after_seconds
            ),
            reap_interval_seconds=defaults.reap_interval_seconds,
            claim_lifetime=timedelta(
                seconds=number(
                    "WOWLAB_CLAIM_LIFETIME_SECONDS", defaults.claim_lifetime.total_seconds()
                )
            ),
        )


class WorkSignal:
    """A generation counter nodes can wait on: bumped whenever chunks become available.

    In-process; :meth:`Coordinator.share_wakeups` forwards each bump to the other
    processes on the same database, whose bumps arrive through :meth:`notify_local`.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0
        self._forward: list[Callable[[], None]] = []

    @property
    def generation(self) -> int:
        """The current generation."""
        return self._generation

    def forward(self, publish: Callable[[], None]) -> Callable[[], None]:
        """Also call ``publish()`` (which must not block) on every :meth:`notify`; returns
        what stops it."""
        self._forward.append(publish)
        return lambda: self._forward.remove(publish)

    def notify(self) -> None:
        """Wake every waiter, here and (when forwarded) in the other processes."""
        self.notify_local()
        for publish in self._forward:
            publish()

    def notify_local(self) -> None:
        """Wake every waiter of this process only (a bump from another process)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, since: int, timeout: float) -> int:
        """Block until the generation passes ``since`` or ``timeout`` runs out."""
        with self._cond:
            self._cond.wait_for(lambda: self._generation != since, timeout=timeout)
            return self._generation


def _concurrent_writers(db: DbEngine) -> int:
    """How many write transactions the coordinator runs at once."""
    if not is_postgres(db):
        return 1  # SQLite has one writer anyway
    pool = db.pool
    size = int(getattr(pool, "size", lambda: 5)())
    capacity = size + max(int(getattr(pool, "_max_overflow", 0)), 0)
    return max(2, min(32, capacity - 4))


class Coordinator:
    """Node-facing operations: register, claim status, heartbeat, lease, config, complete, fail."""

    def __init__(
        self,
        db: DbEngine,
        *,
        hooks: Hooks,
        settings: CoordinatorSettings | None = None,
    ) -> None:
        self.db = db
        self.hooks = hooks
        self.settings = settings or CoordinatorSettings()
        #: How results are sampled for verification; tests swap in a seeded random.
        self.verify_random = VerifyPolicy().random
        self.work = WorkSignal()
        #: Cross-process wake-ups, once :meth:`share_wakeups` was called.
        self.wakeups: Wakeups | None = None
        self._last_reap = 0.0
        self._last_sweep = 0.0
        self._reap_lock = threading.Lock()
        self._prepared: OrderedDict[str, Any] = OrderedDict()
        self._gate = threading.BoundedSemaphore(_concurrent_writers(db))
        self._postgres = is_postgres(db)
        self._prepared_lock = threading.Lock()
        self._finisher = _Finisher(self._finish_job)

    # --- plumbing -------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        # Callers queue here rather than in the connection pool (which times out after
        # 30 s under a burst of nodes) or in SQLite's busy handler (which polls).
        with self._gate, write_session(self.db) as session:
            yield session

    @contextmanager
    def _node_session(self, creds: NodeCredentials) -> Iterator[tuple[Session, Node]]:
        with self._writing() as session:
            node = node_ops.authenticate_node(session, node_id=creds.node_id, token=creds.token)
            yield session, node

    @contextmanager
    def _node_call(self, creds: NodeCredentials) -> Iterator[_Call]:
        """A lease's or a completion's transaction, with its node read outside the ORM
        (:func:`~wowlab_core.nodes.read_node`). On PostgreSQL the session holds one
        connection throughout, so the jobs' counts go on it after the commit
        (:meth:`_count`) instead of checking out (and pinging) another."""
        with self._gate:
            if not self._postgres:
                with write_session(self.db) as session:
                    yield _Call(session, None, self._read_node(session, creds))
                return
            with self.db.connect() as conn, Session(conn, expire_on_commit=False) as session:
                yield _Call(session, conn, self._read_node(session, creds))

    @staticmethod
    def _read_node(session: Session, creds: NodeCredentials) -> node_ops.NodeView:
        return node_ops.read_node(session.connection(), node_id=creds.node_id, token=creds.token)

    def _maybe_reap(self) -> None:
        now = time.monotonic()
        if now - self._last_reap < self.settings.reap_interval_seconds:
            return
        if not self._reap_lock.acquire(blocking=False):
            return
        try:
            self._last_reap = now
            self.reap()
        finally:
            self._reap_lock.release()

    def reap(self) -> int:
        """Requeue expired leases, mark silent nodes offline, let results nobody could
        check count, merge jobs left unmerged. Returns chunks requeued."""
        now = utcnow()
        with self._writing() as session:
            requeued, failed = scheduler.requeue_expired(session, now=now)
            node_ops.mark_offline_nodes(
                session, silent_for=timedelta(seconds=self.settings.offline_after_seconds)
            )
            unchecked = accept_stale_checks(
                session, older_than=timedelta(seconds=self.settings.verify_timeout_seconds)
            )
            session.commit()
        self._count(unchecked)
        if time.monotonic() - self._last_sweep >= UNFINISHED_SWEEP_SECONDS:
            self._last_sweep = time.monotonic()
            with read_session(self.db) as session:
                stray = unfinished_jobs(
                    session, quiet_since=now - timedelta(seconds=UNFINISHED_QUIET_SECONDS)
                )
            self._finisher.submit(stray)
        for job in failed:
            self.hooks.job_finished(job=job)
        if requeued:
            self.work.notify()
        return requeued

    def _count(self, progress: dict[int, int], *, conn: Connection | None = None) -> None:
        """Add committed results to their jobs' counts (a short transaction of its own,
        job by job, so a retry never adds a job's results twice); jobs that reached their
        total go to the finisher. ``conn``: a PostgreSQL connection the caller holds (in
        the gate), with no transaction open."""
        done: list[int] = []
        if conn is not None and progress:  # one round trip a job: no BEGIN ... COMMIT
            conn.execution_options(isolation_level="AUTOCOMMIT")
        for job_id in sorted(progress):
            delta = {job_id: progress[job_id]}
            for attempt in range(5):
                try:
                    if conn is not None:
                        done += add_progress(conn, delta)
                    elif self._postgres:
                        with self._gate, self.db.connect() as own:
                            own.execution_options(isolation_level="AUTOCOMMIT")
                            done += add_progress(own, delta)
                    else:
                        with self._writing() as session:
                            done += add_progress(session.connection(), delta)
                            session.commit()
                    break
                except OperationalError as exc:
                    if attempt == 4 or not _retryable(exc):
                        # The results are committed: the reaper's sweep merges the job.
                        log.exception("counting results of job %s failed", job_id)
                        break
                    time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        self._finisher.submit(done)

    def _finish_job(self, job_id: int) -> None:
        """Merge a job whose chunks are all done (in the finisher's thread): finish it, or
        plan another round of chunks (a target error not reached yet)."""
        with self._writing() as session:
            job = session.get(SimJob, job_id, with_for_update=True, populate_existing=True)
            if job is None or job.status not in ACTIVE_JOB_STATUSES:
                return  # merged already (a sweep and a count both sent it), or cancelled
            if session.execute(
                select(SimChunk.id)
                .where(
                    col(SimChunk.job_id) == job_id,
                    col(SimChunk.status).in_(OPEN_CHUNK_STATUSES),
                )
                .limit(1)
            ).first():
                return  # a chunk is still out (a sweep's guess was early): its count merges
            ended = finalize_job(
                session, job=job, hooks=self.hooks, prepared_cache=self._prepared_cache()
            )
            session.commit()
        if ended:
            self.hooks.job_finished(job=job)
        else:
            self.work.notify()

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait until every job handed to the finisher is merged (tests, shutdown).
        Returns False if ``timeout`` ran out first."""
        return self._finisher.wait_idle(timeout)

    def share_wakeups(self, wakeups: Wakeups) -> Callable[[], None]:
        """Exchange work wake-ups with the other processes on this database: a bump of
        :attr:`work` here is published, theirs bump it here. Returns what undoes it (for
        an app whose lifespan ends while the coordinator lives on)."""
        if self.wakeups is not None:
            return lambda: None
        self.wakeups = wakeups
        stop_forwarding = self.work.forward(lambda: wakeups.publish(WORK))
        wakeups.subscribe(WORK, lambda _payload: self.work.notify_local())

        def unshare() -> None:
            stop_forwarding()
            self.wakeups = None

        return unshare

    def notify_work(self) -> None:
        """Tell waiting nodes that chunks may be available (after a submit)."""
        self.work.notify()

    # --- node-facing operations -----------------------------------------------------

    def register(self, info: NodeInfo, *, keyed: Keyed | None = None) -> Registration:
        """Register a new node; returns its id, secret token and claim code.

        ``keyed``: the request's idempotency key (see :mod:`wowlab_core.request_keys`);
        a repeat raises :class:`~wowlab_core.request_keys.RequestRepeated`.
        """
        with self._writing() as session:
            _check_repeat(session, keyed)
            new = node_ops.register_node(
                session, info=info, hooks=self.hooks, lifetime=self.settings.claim_lifetime
            )
            node = new.node
            registration = Registration(
                node_id=node.id or 0,
                token=new.token,
                claim_code=node.claim_code or "",
                claim_expires_at=node.claim_expires_at,
            )
            _record(session, keyed, registration)
            session.commit()
        log.info("node %s registered as %r", node.id, node.name)
        return registration

    def claim_status(self, creds: NodeCredentials) -> ClaimStatus:
        """Whether the node is claimed; else the code it should show (renewed if expired)."""
        with self._node_session(creds) as (session, node):
            status = node_ops.claim_status(
                session, node=node, hooks=self.hooks, lifetime=self.settings.claim_lifetime
            )
            session.commit()
        return replace(status, heartbeat_seconds=self.settings.heartbeat_seconds)

    def heartbeat(
        self, creds: NodeCredentials, beat: Heartbeat, *, keyed: Keyed | None = None
    ) -> HeartbeatReply:
        """Mark the node alive; extend the leases it names, hand back the others it held;
        tell it which of its chunks to stop. Read and written as a batch of one
        (:meth:`heartbeat_batch`): the node, its chunks and whether ``keyed`` was carried
        out in one query, outside the ORM."""
        if not isinstance(beat, Heartbeat):
            raise InvalidRequest("a heartbeat names the chunks the node runs", field="running")
        self._maybe_reap()
        with self._writing() as session:
            conn = session.connection()
            found = node_ops.read_beating_nodes(
                conn, [creds.node_id], [keyed.key] if keyed is not None else []
            )
            view = found.authenticated(creds.node_id, creds.token)
            if keyed is not None and keyed.key in found.stored_keys:
                _check_repeat(session, keyed)
            node_ops.check_capabilities(engines=beat.engines, labels=beat.labels)
            [outcome] = scheduler.beat_many(
                session,
                [(view.node, beat.running)],
                lease_seconds=self.settings.lease_seconds,
                held_by=found.held_by,
            )
            reply = self._beat_reply(view, beat, outcome)
            node_ops.save_nodes(conn, [view])
            _record(session, keyed, reply)
            session.commit()
        if reply.released_chunks:
            self.work.notify()
        return reply

    def _beat_reply(
        self, view: node_ops.NodeView, beat: Heartbeat, outcome: scheduler.BeatOutcome
    ) -> HeartbeatReply:
        """Mark the node seen with what it advertises (checked before); its answer."""
        node = view.node
        node_ops.mark_seen(node)
        node_ops.update_capabilities(node, engines=beat.engines, labels=beat.labels)
        if outcome.released:
            log.info(
                "node %s: handed back %d lease(s) it no longer runs",
                node.id,
                len(outcome.released),
            )
        return HeartbeatReply(
            status=node.status,
            cancelled_chunks=outcome.cancelled,
            max_parallel=node.max_parallel,
            heartbeat_seconds=self.settings.heartbeat_seconds,
            released_chunks=outcome.released,
            owner=view.owner,
            sharing=sharing_summary(view.access_types),
        )

    def lease(
        self, creds: NodeCredentials, max_chunks: int, *, keyed: Keyed | None = None
    ) -> list[Lease]:
        """Lease up to ``max_chunks`` chunks the node may run (at most its free workers)."""
        if isinstance(max_chunks, bool) or not isinstance(max_chunks, int) or max_chunks < 0:
            raise InvalidRequest("max_chunks must be a non-negative integer", field="max_chunks")
        self._maybe_reap()
        with self._node_call(creds) as call:
            session = call.session
            _check_repeat(session, keyed)
            node_ops.mark_seen(call.view.node)
            leases = scheduler.lease_chunks(
                session,
                node=call.view.node,
                limit=min(max_chunks, MAX_LEASE_BATCH),
                lease_seconds=self.settings.lease_seconds,
                hooks=self.hooks,
                min_deadline_seconds=self.settings.min_lease_deadline_seconds,
            )
            _record(session, keyed, leases)
            call.view.save(session.connection())
            session.commit()
        return leases

    def get_config(self, creds: NodeCredentials, config_hash: str) -> ConfigPayload:
        """A config by hash; only for a node that has leased a chunk of it."""
        with read_session(self.db) as session:
            node = node_ops.authenticate_node(session, node_id=creds.node_id, token=creds.token)
            leased = session.exec(
                select(ChunkLease.id)
                .join(SimChunk, col(SimChunk.id) == col(ChunkLease.chunk_id))
                .where(col(ChunkLease.node_id) == node.id, col(SimChunk.config_hash) == config_hash)
                .limit(1)
            ).first()
            config = session.get(SimConfig, config_hash) if leased is not None else None
            if config is None:
                raise NotFound(
                    f"no config {config_hash[:12]}... for this node", field="config_hash"
                )
            return ConfigPayload(
                config_hash=config.hash, engine=config.engine, config=config.config
            )

    def complete(
        self,
        creds: NodeCredentials,
        completions: Sequence[Completion],
        *,
        keyed: Keyed | None = None,
    ) -> list[CompletionOutcome]:
        """Record results. Idempotent: a duplicate is answered ``duplicate`` and changes nothing."""
        _check_completions(completions)
        with self._node_call(creds) as call:
            session = call.session
            _check_repeat(session, keyed)
            done = self._complete_in(session, call.view.node, completions)
            _record(session, keyed, done.outcomes)
            call.view.save(session.connection())
            session.commit()
            if call.conn is not None:  # on the same connection, after the commit
                self._count(done.progress, conn=call.conn)
        self._announce([done], counted=call.conn is not None)
        return done.outcomes

    def _complete_in(
        self, session: Session, node: Node, completions: Sequence[Completion]
    ) -> scheduler.CompletionReport:
        """Store results (``node`` is saved by the caller: a persistent node by its
        session, a :class:`~wowlab_core.nodes.NodeView`'s by :meth:`~NodeView.save`)."""
        node_ops.mark_seen(node)
        return scheduler.complete_chunks(
            session,
            node=node,
            completions=completions,
            policy=VerifyPolicy(rate=self.settings.verify_rate, random=self.verify_random),
            snapshots=self.hooks.has_chunk_listeners(),
        )

    def _announce(
        self, done: Sequence[scheduler.CompletionReport], *, counted: bool = False
    ) -> None:
        # After the commit: the jobs' counts unless ``counted`` (and the merge of the jobs
        # this finished, in the finisher's thread: never in the request of the node that
        # sent the last result), then plugins hear of the results, nodes of new work.
        if not counted:
            progress: dict[int, int] = {}
            for report in done:
                for job_id, n in report.progress.items():
                    progress[job_id] = progress.get(job_id, 0) + n
            self._count(progress)
        wake = False
        for report in done:
            for chunk, result in report.completed:
                self.hooks.chunk_completed(chunk=chunk, result=result)
            wake = wake or bool(report.requeued)
        if wake:
            self.work.notify()

    # --- many nodes' requests in one transaction (a bridge's batches) ------------------

    def heartbeat_batch(
        self, items: Sequence[tuple[NodeCredentials, Heartbeat, Keyed]]
    ) -> list[bytes | None]:
        """Heartbeats of many nodes in one transaction: each node's answer, written by its
        ``Keyed`` (a refusal too); None for a request being carried out elsewhere right now.

        One node's refusal changes nothing for the others. If the transaction as a whole
        fails (a deadlock with another process, say), each request is carried out on its
        own (:meth:`heartbeat`).
        """
        self._maybe_reap()
        try:
            replies, released = self._heartbeats_at_once(items)
        except OperationalError as exc:  # a deadlock with another process, say
            if not _retryable(exc):
                raise
            log.info("a batch of %d heartbeats failed (%s); one at a time", len(items), exc)
        else:
            if released:
                self.work.notify()
            return replies
        return [self._alone(self._heartbeat_keyed, *item) for item in items]

    def _heartbeat_keyed(
        self, creds: NodeCredentials, beat: Heartbeat, keyed: Keyed
    ) -> HeartbeatReply:
        return self.heartbeat(creds, beat, keyed=keyed)

    def _heartbeats_at_once(
        self, items: Sequence[tuple[NodeCredentials, Heartbeat, Keyed]]
    ) -> tuple[list[bytes | None], bool]:
        """Many nodes' heartbeats in one transaction and a fixed number of statements
        (:func:`~wowlab_core.leases.beat_many`): each node's answer, and whether any lease
        was handed back. A refusal (bad token, bad body) changes nothing; a node named
        twice in one batch has its later heartbeats carried out alone, after this one."""
        replies: list[bytes | None] = [None] * len(items)
        later: list[int] = []
        released = False
        with self._writing() as session:
            # Outside the ORM (nodes read as rows with the chunks they hold, only changed
            # columns written): a batch's CPU is what limits a bridge's heartbeats.
            conn = session.connection()
            found = node_ops.read_beating_nodes(
                conn, (c.node_id for c, _, _ in items), {k.key for _, _, k in items}
            )
            stored = request_keys.stored_replies(session, found.stored_keys)
            todo: list[tuple[int, node_ops.NodeView, Heartbeat]] = []
            seen: set[int] = set()
            for i, (creds, beat, keyed) in enumerate(items):
                if keyed.key in stored:
                    replies[i] = stored[keyed.key]
                    continue
                try:
                    view = found.authenticated(creds.node_id, creds.token)
                    if not isinstance(beat, Heartbeat):
                        raise InvalidRequest(
                            "a heartbeat names the chunks the node runs", field="running"
                        )
                    node_ops.check_capabilities(engines=beat.engines, labels=beat.labels)
                except WowlabError as exc:
                    replies[i] = keyed.error(exc)
                    continue
                if creds.node_id in seen:
                    later.append(i)
                    continue
                seen.add(creds.node_id)
                todo.append((i, view, beat))
            outcomes = scheduler.beat_many(
                session,
                [(view.node, beat.running) for _, view, beat in todo],
                lease_seconds=self.settings.lease_seconds,
                held_by=found.held_by,
            )
            answers: dict[str, bytes] = {}
            for (i, view, beat), outcome in zip(todo, outcomes, strict=True):
                released = released or bool(outcome.released)
                reply = self._beat_reply(view, beat, outcome)
                keyed = items[i][2]
                replies[i] = answers[keyed.key] = keyed.ok(reply)
            node_ops.save_nodes(conn, [view for _, view, _ in todo])
            # A copy of a request that another bridge stored meanwhile keeps that copy's
            # answer; carrying a heartbeat out twice is harmless (it extends, hands back
            # and reports the same leases).
            request_keys.record_many(session, answers)
            session.commit()
        for i in later:
            replies[i] = self._alone(self._heartbeat_keyed, *items[i])
        return replies, released

    def complete_batch(
        self, items: Sequence[tuple[NodeCredentials, Sequence[Completion], Keyed]]
    ) -> list[bytes | None]:
        """Results of many nodes in one transaction (as :meth:`heartbeat_batch`)."""

        def one(session: Session, node: Node, completions: Sequence[Completion]) -> tuple[Any, Any]:
            _check_completions(completions)
            report = self._complete_in(session, node, completions)
            return report.outcomes, report

        def alone(creds: NodeCredentials, completions: Sequence[Completion], keyed: Keyed) -> Any:
            return self.complete(creds, completions, keyed=keyed)

        replies, done = self._batch(items, one, alone)
        self._announce(done)
        return replies

    def _batch(
        self,
        items: Sequence[tuple[NodeCredentials, Any, Keyed]],
        one: Callable[[Session, Node, Any], tuple[Any, Any]],
        alone: Callable[[NodeCredentials, Any, Keyed], Any],
    ) -> tuple[list[bytes | None], list[Any]]:
        """Each item in a savepoint of one transaction: the answers, and what ``one``
        returned beside each result that was committed."""
        replies: list[bytes | None] = [None] * len(items)
        extras: list[Any] = []
        # One order for every process's batches: fewer lock waits, fewer deadlocks.
        order = sorted(range(len(items)), key=lambda i: items[i][0].node_id)
        in_flight: list[int] = []
        later: list[int] = []  # lost a deadlock: carried out alone after the batch
        try:
            with self._writing() as session:
                stored = request_keys.stored_replies(session, {k.key for _, _, k in items})
                # The batch's nodes in one query: each token check below finds its node
                # in the session (held here: the identity map keeps weak references).
                ids = sorted({c.node_id for c, _, _ in items if isinstance(c.node_id, int)})
                held = session.exec(select(Node).where(col(Node.id).in_(ids))).all()
                for i in order:
                    creds, body, keyed = items[i]
                    if keyed.key in stored:
                        replies[i] = stored[keyed.key]
                        continue
                    try:
                        with session.begin_nested():
                            node = node_ops.authenticate_node(
                                session, node_id=creds.node_id, token=creds.token
                            )
                            result, extra = one(session, node, body)
                            request_keys.record(session, keyed.key, keyed.ok(result))
                    except WowlabError as exc:
                        replies[i] = keyed.error(exc)
                    except IntegrityError:  # a copy of this request got there first
                        in_flight.append(i)
                    except DataError as exc:
                        # A value the database refuses (checks should have caught it): this
                        # request's savepoint is rolled back; the others' requests go on.
                        log.warning(
                            "node %s sent a value the database refused: %s",
                            creds.node_id,
                            str(exc.orig).splitlines()[0],
                        )
                        replies[i] = keyed.error(
                            InvalidRequest("the request holds a value the database cannot store")
                        )
                    except OperationalError as exc:
                        if not _retryable(exc):
                            raise
                        later.append(i)  # its savepoint is rolled back, its locks freed
                    else:
                        replies[i] = keyed.ok(result)
                        extras.append(extra)
                session.commit()
                del held
        except OperationalError as exc:
            log.info("a batch of %d requests failed (%s); one at a time", len(items), exc)
            return [self._alone(alone, *item) for item in items], []
        for i in later:
            replies[i] = self._alone(alone, *items[i])
        if in_flight:
            with read_session(self.db) as session:
                found = request_keys.stored_replies(session, {items[i][2].key for i in in_flight})
            for i in in_flight:
                replies[i] = found.get(items[i][2].key)
        return replies, extras

    def _alone(
        self,
        alone: Callable[[NodeCredentials, Any, Keyed], Any],
        creds: NodeCredentials,
        body: Any,
        keyed: Keyed,
        *,
        tries: int = 5,
    ) -> bytes | None:
        """One request in its own transaction, tried again after a deadlock."""
        for attempt in range(tries):
            try:
                return keyed.ok(alone(creds, body, keyed))
            except WowlabError as exc:
                return keyed.error(exc)
            except RequestRepeated as repeated:
                return repeated.reply or request_keys.lookup(self.db, keyed.key)
            except OperationalError as exc:
                if attempt == tries - 1 or not _retryable(exc):
                    raise
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    def fail(
        self,
        creds: NodeCredentials,
        chunk_id: int,
        lease_token: str,
        error: str,
        reason: str | None = None,
        *,
        keyed: Keyed | None = None,
    ) -> None:
        """Record a node's error for a chunk; the chunk is retried or the job fails.

        ``reason`` ``over-budget``: the node stopped the chunk at its time budget; the
        chunk is cut smaller and no failure is counted.
        """
        if reason is not None and reason not in set(FailReason):
            known = ", ".join(r.value for r in FailReason)
            raise InvalidRequest(f"reason must be one of {known}", field="reason")
        with self._node_session(creds) as (session, node):
            _check_repeat(session, keyed)
            job = scheduler.fail_chunk(
                session,
                node=node,
                chunk_id=chunk_id,
                lease_token=lease_token,
                error=str(error),
                over_budget=reason == FailReason.OVER_BUDGET,
            )
            _record(session, keyed, None)
            session.commit()
        if job is not None:
            self.hooks.job_finished(job=job)
        else:
            self.work.notify()

    def release(self, creds: NodeCredentials, chunk_ids: Sequence[int], lease_token: str) -> int:
        """Hand chunks back (a node stopping): they become pending without an attempt counted."""
        with self._node_session(creds) as (session, node):
            count = scheduler.release_chunks(
                session, node=node, chunk_ids=chunk_ids, lease_token=lease_token
            )
            session.commit()
        if count:
            self.work.notify()
        return count

    def touch(self, creds: NodeCredentials) -> None:
        """Check the node's token and mark it alive, leaving its leases alone."""
        with self._node_session(creds) as (session, node):
            node_ops.mark_seen(node)
            session.add(node)
            session.commit()

    def go_offline(self, creds: NodeCredentials) -> None:
        """A node says goodbye (clean shutdown)."""
        with self._node_session(creds) as (session, node):
            if node.user_id is not None:
                node.status = NodeStatus.OFFLINE.value
            node.last_seen_at = utcnow()
            session.add(node)
            session.commit()

    def wait_for_work(self, since: int, timeout: float) -> int:
        """Block until new work may be available (in-process push)."""
        return self.work.wait(since, timeout)

    def _prepared_cache(self) -> dict[str, Any]:
        # Engines' prepared configs, reused when finishing several jobs of one config.
        with self._prepared_lock:
            while len(self._prepared) > 32:
                self._prepared.popitem(last=False)
            return self._prepared


class _Finisher:
    """One thread that merges finished jobs, in the order they finished, each once.

    Started on first use. A merge that fails is logged; the job stays active and the
    reaper's sweep (:func:`~wowlab_core.completions.unfinished_jobs`) hands it back.
    """

    def __init__(self, run: Callable[[int], None]) -> None:
        self._run = run
        self._cond = threading.Condition()
        self._queue: list[int] = []
        self._busy = False
        self._thread: threading.Thread | None = None

    def submit(self, job_ids: Sequence[int]) -> None:
        """Merge these jobs soon (a job already waiting is not queued twice)."""
        if not job_ids:
            return
        with self._cond:
            self._queue.extend(j for j in job_ids if j not in self._queue)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="wowlab-finisher", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or being merged."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                if not self._cond.wait_for(lambda: bool(self._queue), timeout=60.0):
                    self._thread = None
                    return
                job_id = self._queue.pop(0)
                self._busy = True
            try:
                self._run(job_id)
            except Exception:
                log.exception("merging job %s failed; the reaper tries again", job_id)


@dataclass
class _Call:
    """A node's lease or completion: its session, the connection the session holds (on
    PostgreSQL) and its node."""

    session: Session
    conn: Connection | None
    view: node_ops.NodeView


def _retryable(exc: OperationalError) -> bool:
    """A deadlock or serialisation failure (PostgreSQL), or a busy database (SQLite):
    trying the transaction again may succeed."""
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40P01", "40001") or "database is locked" in str(exc.orig)


def _check_completions(completions: Sequence[Completion]) -> None:
    if len(completions) > MAX_COMPLETION_BATCH:
        raise InvalidRequest(
            f"at most {MAX_COMPLETION_BATCH} completions per call", field="completions"
        )


def _check_repeat(session: Session, keyed: Keyed | None) -> None:
    """Raise :class:`RequestRepeated` with the stored answer if ``keyed`` was carried out."""
    if keyed is not None:
        stored = request_keys.stored_replies(session, [keyed.key])
        if keyed.key in stored:
            raise RequestRepeated(stored[keyed.key])


def _record(session: Session, keyed: Keyed | None, result: Any) -> None:
    """Store ``keyed``'s answer in this transaction; a copy stored first wins."""
    if keyed is None:
        return
    try:
        request_keys.record(session, keyed.key, keyed.ok(result))
    except IntegrityError:
        raise RequestRepeated(None) from None


def run_in_session(db: DbEngine, fn: Callable[[Session], T]) -> T:
    """Run ``fn`` in a write session and commit (small helper for callers)."""
    with write_session(db) as session:
        value = fn(session)
        session.commit()
        return value


__all__ = ["Coordinator", "CoordinatorSettings", "WorkSignal", "run_in_session"]
