"""The coordinator: the node-facing operations over the database.

Every transport (local, HTTP, MQTT, ...) calls these methods and nothing else. Each call
authenticates the node by its token, runs in one short transaction, and announces events
(node claimed, chunk completed, job finished) to plugins only after the commit.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, col, select

from wowlab_core import nodes as node_ops
from wowlab_core import scheduler
from wowlab_core.claim_codes import DEFAULT_LIFETIME
from wowlab_core.db import is_postgres, read_session, write_session
from wowlab_core.errors import InvalidRequest, NotFound
from wowlab_core.jobs import finalize_job
from wowlab_core.models import ChunkLease, Node, NodeStatus, SimChunk, SimConfig, SimJob, utcnow
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import (
    ClaimStatus,
    Completion,
    CompletionOutcome,
    ConfigPayload,
    HeartbeatReply,
    Lease,
    NodeCredentials,
    NodeInfo,
    Registration,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_LEASE_BATCH = 256
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

    @classmethod
    def from_env(cls) -> CoordinatorSettings:
        """Defaults, overridden by ``WOWLAB_LEASE_SECONDS``, ``WOWLAB_HEARTBEAT_SECONDS``,
        ``WOWLAB_OFFLINE_AFTER_SECONDS`` and ``WOWLAB_CLAIM_LIFETIME_SECONDS``."""
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

        return cls(
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
    """A generation counter nodes can wait on: bumped whenever chunks become available."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        """The current generation."""
        return self._generation

    def notify(self) -> None:
        """Wake every waiter."""
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
        self.work = WorkSignal()
        self._last_reap = 0.0
        self._reap_lock = threading.Lock()
        self._prepared: OrderedDict[str, Any] = OrderedDict()
        self._gate = threading.BoundedSemaphore(_concurrent_writers(db))
        self._prepared_lock = threading.Lock()

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
        """Requeue expired leases and mark silent nodes offline. Returns chunks requeued."""
        with self._writing() as session:
            requeued, failed = scheduler.requeue_expired(session)
            node_ops.mark_offline_nodes(
                session, silent_for=timedelta(seconds=self.settings.offline_after_seconds)
            )
            session.commit()
        for job in failed:
            self.hooks.job_finished(job=job)
        if requeued:
            self.work.notify()
        return requeued

    def notify_work(self) -> None:
        """Tell waiting nodes that chunks may be available (after a submit)."""
        self.work.notify()

    # --- node-facing operations -----------------------------------------------------

    def register(self, info: NodeInfo) -> Registration:
        """Register a new node; returns its id, secret token and claim code."""
        with self._writing() as session:
            new = node_ops.register_node(
                session, info=info, hooks=self.hooks, lifetime=self.settings.claim_lifetime
            )
            session.commit()
            node = new.node
        log.info("node %s registered as %r", node.id, node.name)
        return Registration(
            node_id=node.id or 0,
            token=new.token,
            claim_code=node.claim_code or "",
            claim_expires_at=node.claim_expires_at,
        )

    def claim_status(self, creds: NodeCredentials) -> ClaimStatus:
        """Whether the node is claimed; else the code it should show (renewed if expired)."""
        with self._node_session(creds) as (session, node):
            status = node_ops.claim_status(
                session, node=node, hooks=self.hooks, lifetime=self.settings.claim_lifetime
            )
            session.commit()
        return replace(status, heartbeat_seconds=self.settings.heartbeat_seconds)

    def heartbeat(self, creds: NodeCredentials) -> HeartbeatReply:
        """Mark the node alive, extend its leases, and tell it which chunks were cancelled."""
        self._maybe_reap()
        with self._node_session(creds) as (session, node):
            node_ops.mark_seen(node)
            session.add(node)
            if node.user_id is not None:
                scheduler.extend_leases(
                    session, node=node, lease_seconds=self.settings.lease_seconds
                )
            cancelled = scheduler.cancelled_leases(session, node=node)
            session.commit()
            return HeartbeatReply(
                status=node.status,
                cancelled_chunks=cancelled,
                max_parallel=node.max_parallel,
                heartbeat_seconds=self.settings.heartbeat_seconds,
            )

    def lease(self, creds: NodeCredentials, max_chunks: int) -> list[Lease]:
        """Lease up to ``max_chunks`` chunks the node may run."""
        if isinstance(max_chunks, bool) or not isinstance(max_chunks, int) or max_chunks < 0:
            raise InvalidRequest("max_chunks must be a non-negative integer", field="max_chunks")
        self._maybe_reap()
        with self._node_session(creds) as (session, node):
            node_ops.mark_seen(node)
            session.add(node)
            leases = scheduler.lease_chunks(
                session,
                node=node,
                limit=min(max_chunks, MAX_LEASE_BATCH),
                lease_seconds=self.settings.lease_seconds,
                hooks=self.hooks,
            )
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
        self, creds: NodeCredentials, completions: Sequence[Completion]
    ) -> list[CompletionOutcome]:
        """Record results. Idempotent: a duplicate is answered ``duplicate`` and changes nothing."""
        if len(completions) > MAX_COMPLETION_BATCH:
            raise InvalidRequest(
                f"at most {MAX_COMPLETION_BATCH} completions per call", field="completions"
            )
        with self._node_session(creds) as (session, node):
            node_ops.mark_seen(node)
            session.add(node)
            report = scheduler.complete_chunks(session, node=node, completions=completions)
            finished: list[SimJob] = []
            more_work = False
            for job in report.finished_jobs:
                if finalize_job(
                    session, job=job, hooks=self.hooks, prepared_cache=self._prepared_cache()
                ):
                    finished.append(job)
                else:
                    more_work = True
            session.commit()
        for chunk, result in report.completed:
            self.hooks.chunk_completed(chunk=chunk, result=result)
        for job in finished:
            self.hooks.job_finished(job=job)
        if more_work:
            self.work.notify()
        return report.outcomes

    def fail(self, creds: NodeCredentials, chunk_id: int, lease_token: str, error: str) -> None:
        """Record a node's error for a chunk; the chunk is retried or the job fails."""
        with self._node_session(creds) as (session, node):
            job = scheduler.fail_chunk(
                session, node=node, chunk_id=chunk_id, lease_token=lease_token, error=str(error)
            )
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


def run_in_session(db: DbEngine, fn: Callable[[Session], T]) -> T:
    """Run ``fn`` in a write session and commit (small helper for callers)."""
    with write_session(db) as session:
        value = fn(session)
        session.commit()
        return value


__all__ = ["Coordinator", "CoordinatorSettings", "WorkSignal", "run_in_session"]
