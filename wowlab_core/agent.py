"""The node runtime: register, show the claim code, wait to be claimed, then work.

Transport-agnostic and headless: ``wowlab node run``, ``wowlab up`` and ``wowlab sim`` drive
this same agent (and so would a desktop GUI: it is a face on the agent, never a second node
implementation). Work loop:
lease as many chunks as there are free workers -> fetch each config through the cache ->
run it on the engine in a worker thread -> report the result. Heartbeats keep the leases
alive. Stopping is graceful: no new leases, running chunks finish (or, past the drain
timeout, are handed back), then the node says goodbye.

Volunteers first: every running chunk has a stop flag (:mod:`wowlab_core.chunk_guard`)
that a cancel, a hand-back, its time budget or the memory cap sets; the engine stops
within a fraction of a second and the agent reports an over-budget chunk as such (not the
node's fault). ``progress`` holds the iterations each running chunk has done.

A desktop app drives the same agent: :meth:`NodeAgent.pause` hands running chunks back
and takes no lease until :meth:`NodeAgent.resume`; :meth:`NodeAgent.set_worker_limit`
caps the workers below the coordinator's ``max_parallel`` (a CPU limit); and
:meth:`NodeAgent.running_chunks` tells what each worker is doing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio
import anyio.to_thread

from wowlab_core import __version__
from wowlab_core.cache import CacheSettings, ConfigCache, MemoryDiskCache
from wowlab_core.chunk_guard import ChunkGuard, StopReason, accepts_reason, run_guarded
from wowlab_core.engines import Engine, is_local_only
from wowlab_core.errors import (
    AuthenticationFailed,
    ChunkStopped,
    RateLimited,
    TransportError,
    WowlabError,
    retry_after_seconds,
)
from wowlab_core.job_info import config_name
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import (
    ClaimStatus,
    Completion,
    FailReason,
    Heartbeat,
    Lease,
    NodeCredentials,
    NodeInfo,
    RunningChunk,
)
from wowlab_core.scheduler import error_message
from wowlab_core.transport import NodeTransport

log = logging.getLogger(__name__)


@dataclass
class NodeStats:
    """Live figures of a node, for dashboards."""

    # starting, waiting-for-claim, idle, working, paused, stopping, stopped
    state: str = "starting"
    claim_code: str | None = None
    owner: str | None = None
    #: Who may use the node besides its owner, as the coordinator says (None: not told).
    sharing: str | None = None
    busy_workers: int = 0
    max_workers: int = 0
    chunks_completed: int = 0
    chunks_failed: int = 0
    chunks_over_budget: int = 0
    iterations_completed: int = 0
    started_at: float = field(default_factory=time.monotonic)
    last_error: str | None = None
    #: Why the coordinator cannot be reached right now (None: the last call got through).
    connection_error: str | None = None

    @property
    def iterations_per_second(self) -> float:
        """Average simulation speed since start."""
        return self.iterations_completed / max(time.monotonic() - self.started_at, 1e-9)


@dataclass(frozen=True)
class ChunkProgress:
    """A chunk a worker of this node is running, for displays."""

    chunk_id: int
    job_id: int
    engine: str
    #: The config's ``name``, once the config is known (None before, or if it has none).
    config_name: str | None
    iterations: int
    iterations_done: int

    @property
    def fraction(self) -> float:
        """Share of the chunk done, 0 to 1."""
        return min(1.0, self.iterations_done / self.iterations) if self.iterations else 0.0


@dataclass
class AgentOptions:
    """Timings and limits of the agent."""

    heartbeat_seconds: float = 15.0
    #: A chunk that runs longer than this has its progress sent this often (an extra
    #: heartbeat), so the job's page moves within long chunks; chunks of the usual ~5 s end
    #: first and cost no extra call. 0: progress goes with the regular heartbeats only.
    progress_seconds: float = 5.0
    idle_wait_seconds: float = 2.0
    claim_wait_seconds: float = 25.0
    drain_seconds: float = 60.0
    #: The first pause before trying an unreachable coordinator again; doubled on every
    #: failure in a row, up to ``max_retry_seconds``.
    retry_seconds: float = 2.0
    max_retry_seconds: float = 30.0
    #: The owner's cap on one chunk's wall time; a lease's budget applies when smaller.
    max_chunk_seconds: float = 900.0
    #: Chunks are stopped while the node process uses more resident memory than this
    #: (None: no cap).
    memory_cap_mb: float | None = 2048.0
    #: Whether engines marked ``local_only`` may run (a pool on the submitter's machine).
    allow_local_only_engines: bool = False


def _aware(moment: datetime | None) -> datetime | None:
    """``moment`` with a time zone (a naive one is UTC, as the coordinator stores it)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


async def _first_of(*waits: Callable[[], Awaitable[object]]) -> None:
    """Return as soon as one of ``waits`` returns; the others are cancelled."""
    async with anyio.create_task_group() as tg:

        async def run(wait: Callable[[], Awaitable[object]]) -> None:
            await wait()
            tg.cancel_scope.cancel()

        for wait in waits:
            tg.start_soon(run, wait)


class NodeAgent:
    """One node: its credentials, transport, engines and workers."""

    def __init__(
        self,
        transport: NodeTransport,
        *,
        info: NodeInfo,
        hooks: Hooks,
        credentials: NodeCredentials | None = None,
        cache: ConfigCache | None = None,
        options: AgentOptions | None = None,
        on_registered: Callable[[NodeCredentials], None] | None = None,
        on_claim_code: Callable[[ClaimStatus], None] | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.transport = transport
        self.hooks = hooks
        self._engines: dict[str, Engine] | None = None
        self.options = options or AgentOptions()
        if info.engines is None:  # advertise what this node can run
            info = replace(info, engines=self.engine_versions())
        self.info = info
        self.credentials = credentials
        self.cache: ConfigCache = (
            cache or hooks.config_cache(settings=CacheSettings()) or MemoryDiskCache()
        )
        self.on_registered = on_registered
        self.on_claim_code = on_claim_code
        self.on_event = on_event
        self.stats = NodeStats(max_workers=info.max_parallel)
        self.max_parallel = info.max_parallel
        self._stopping = anyio.Event()
        self._hand_back = anyio.Event()
        self._prepared: dict[str, Any] = {}
        self._running: dict[int, Lease] = {}
        #: Iterations done so far of each running chunk (sent with heartbeats).
        self.progress: dict[int, int] = {}
        #: What the last heartbeat said of each chunk's progress, and when it went.
        self._sent_progress: dict[int, int] = {}
        self._last_beat = 0.0
        self._cancelled: set[int] = set()
        self._slot_freed = anyio.Event()
        # A heartbeat hands back every lease it does not name, so it must never overlap
        # a lease call whose chunks the agent does not know yet.
        self._lease_lock = anyio.Lock()
        self._guards: dict[int, ChunkGuard] = {}
        self._config_names: dict[str, str | None] = {}
        #: This machine's cap on workers (a CPU limit), below ``max_parallel``; None: none.
        self.worker_limit: int | None = None
        self._paused = False
        self._resumed = anyio.Event()
        self._failures_in_a_row = 0

    # --- control --------------------------------------------------------------------

    def stop(self, *, hand_back: bool = False) -> None:
        """Ask the agent to stop: finish running chunks, or with ``hand_back`` give them
        back to the coordinator right away (call from the event loop)."""
        self._stopping.set()
        if hand_back:
            self._hand_back.set()
            for chunk_id in list(self._guards):
                self._stop_chunk(chunk_id, StopReason.HAND_BACK)
        self._slot_freed.set()

    def pause(self) -> None:
        """Hand every running chunk back and take no lease until :meth:`resume`; the node
        stays online (heartbeats go on). Call from the event loop."""
        if self._paused:
            return
        self._paused = True
        self._resumed = anyio.Event()
        for chunk_id in list(self._guards):
            self._stop_chunk(chunk_id, StopReason.HAND_BACK)
        if self.stats.state in ("idle", "working"):
            self.stats.state = "paused"
        self._slot_freed.set()
        self._emit("paused", running=len(self._running))

    def resume(self) -> None:
        """Take leases again after :meth:`pause` (call from the event loop)."""
        if not self._paused:
            return
        self._paused = False
        if self.stats.state == "paused":
            self.stats.state = "working" if self._running else "idle"
        self._resumed.set()
        self._emit("resumed")

    @property
    def paused(self) -> bool:
        """Whether the node is paused."""
        return self._paused

    def set_worker_limit(self, workers: int | None) -> None:
        """Run at most ``workers`` chunks at once (None: as many as ``max_parallel``).

        Chunks already running above the new limit finish; no lease is taken until the
        node is below it. Call from the event loop.
        """
        if workers is not None and workers < 1:
            raise ValueError("a worker limit is at least 1")
        self.worker_limit = workers
        self.stats.max_workers = self.capacity
        self._slot_freed.set()

    @property
    def capacity(self) -> int:
        """How many chunks this node runs at once: ``max_parallel``, within the local limit."""
        if self.worker_limit is None:
            return self.max_parallel
        return max(1, min(self.max_parallel, self.worker_limit))

    def running_chunks(self) -> list[ChunkProgress]:
        """What each worker is doing, by chunk id (call from the event loop)."""
        return [
            ChunkProgress(
                chunk_id=chunk_id,
                job_id=lease.job_id,
                engine=lease.engine,
                config_name=self._config_names.get(lease.config_hash),
                iterations=lease.iterations,
                iterations_done=self.progress.get(chunk_id, 0),
            )
            for chunk_id, lease in sorted(self._running.items())
        ]

    def cancel_chunk(self, chunk_id: int) -> None:
        """The coordinator says this running chunk's job has ended: stop it, report nothing."""
        if chunk_id in self._running:
            self._cancelled.add(chunk_id)
            self._stop_chunk(chunk_id, StopReason.CANCELLED)

    def _stop_chunk(self, chunk_id: int, reason: StopReason, detail: str = "") -> None:
        guard = self._guards.get(chunk_id)
        if guard is not None:
            guard.stop(reason, detail)

    @property
    def stopping(self) -> bool:
        """Whether a stop was asked for."""
        return self._stopping.is_set()

    def _emit(self, event: str, **data: Any) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event, data)
            except Exception:
                log.exception("node event listener failed")

    # --- life cycle -----------------------------------------------------------------

    async def run(self) -> None:
        """Register if needed, wait for the claim, work until stopped."""
        creds = await self.ensure_registered()
        if not await self.wait_until_claimed(creds):
            return
        self.stats.state = "idle"
        self._emit("claimed", owner=self.stats.owner)
        # The first heartbeat names no chunk: leases a previous run of this identity still
        # held (a crash, a lost answer) go back to the pool at once.
        await self._heartbeat(creds)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._heartbeat_loop, creds)
                tg.start_soon(self._news_while_busy, creds)
                await self._work_loop(creds, tg)
                tg.cancel_scope.cancel()
        finally:
            self.stats.state = "stopped"
            with anyio.CancelScope(shield=True):
                try:
                    await self.transport.go_offline(creds)
                except (WowlabError, OSError) as exc:
                    log.info("could not say goodbye: %s", error_message(exc))
            self._emit("stopped")

    async def ensure_registered(self) -> NodeCredentials:
        """The node's credentials, registering it first if it has none."""
        if self.credentials is not None:
            return self.credentials
        while True:
            try:
                reg = await self.transport.register(self.info)
                break
            except TransportError as exc:
                log.warning("cannot register yet: %s", exc.message)
                await self._back_off(exc)
                if self.stopping:
                    raise
            except RateLimited as exc:
                # Registrations from this address are limited: wait as told, then again.
                wait = max(retry_after_seconds(exc.message) or 0.0, self.options.retry_seconds)
                self.stats.last_error = exc.message
                log.warning("cannot register yet: %s", exc.message)
                await self._sleep_or_stop(wait)
                if self.stopping:
                    raise
        self._reached()
        self.credentials = NodeCredentials(node_id=reg.node_id, token=reg.token)
        if self.on_registered is not None:
            self.on_registered(self.credentials)
        self._emit("registered", node_id=reg.node_id)
        return self.credentials

    async def wait_until_claimed(self, creds: NodeCredentials) -> bool:
        """Show the claim code until an owner claims the node. False if stopped first."""
        shown: str | None = None
        expires_at: datetime | None = None
        while not self.stopping:
            wait = 0.0 if shown is None else self.options.claim_wait_seconds
            if expires_at is not None:  # ask again as the code expires: it gets a new one
                until_expiry = (expires_at - datetime.now(UTC)).total_seconds()
                wait = max(1.0, min(wait, until_expiry + 0.5))
            outcome = await self._ask_claim_status(creds, wait=wait)
            if outcome is None:  # stopped while waiting
                return False
            if isinstance(outcome, TransportError):
                self.stats.last_error = outcome.message
                log.warning("cannot reach the coordinator: %s", outcome.message)
                await self._back_off(outcome)
                continue
            self._reached()
            status = outcome
            if status.sharing is not None:
                self.stats.sharing = status.sharing
            if status.claimed:
                self.stats.owner = status.owner
                self.stats.claim_code = None
                if status.max_parallel:
                    self.max_parallel = status.max_parallel
                    self.stats.max_workers = self.capacity
                if status.heartbeat_seconds:
                    self.options.heartbeat_seconds = min(
                        self.options.heartbeat_seconds, status.heartbeat_seconds
                    )
                return True
            self.stats.state = "waiting-for-claim"
            expires_at = _aware(status.claim_expires_at)
            if status.claim_code != shown:
                shown = status.claim_code
                self.stats.claim_code = shown
                self._emit("claim-code", code=shown, expires_at=status.claim_expires_at)
                if self.on_claim_code is not None:
                    self.on_claim_code(status)
        return False

    async def _ask_claim_status(
        self, creds: NodeCredentials, *, wait: float
    ) -> ClaimStatus | TransportError | None:
        """The claim status (a long poll), the transport's error, or None if stopped first."""
        answer: list[ClaimStatus | TransportError] = []

        async def ask() -> None:
            try:
                answer.append(await self.transport.claim_status(creds, wait=wait))
            except TransportError as exc:
                answer.append(exc)

        await _first_of(ask, self._stopping.wait)
        return answer[0] if answer else None

    async def _sleep_or_stop(self, seconds: float) -> None:
        with anyio.move_on_after(seconds):
            await self._stopping.wait()

    def _reached(self) -> None:
        """A call got through: the coordinator is reachable again."""
        self._failures_in_a_row = 0
        self.stats.connection_error = None

    async def _back_off(self, exc: WowlabError) -> None:
        """Wait before trying again after a failed call: longer after each failure in a
        row while the coordinator is unreachable (the same pause after other errors)."""
        if isinstance(exc, TransportError):
            self.stats.connection_error = exc.message
            self._failures_in_a_row += 1
        delay = self.options.retry_seconds * 2 ** max(0, self._failures_in_a_row - 1)
        await self._sleep_or_stop(min(delay, max(self.options.max_retry_seconds, 0.0)))

    # --- work -----------------------------------------------------------------------

    def engine_versions(self) -> dict[str, str]:
        """The engines this node can run, ``{name: version}`` (local-only ones only when
        this node may run them)."""
        if self._engines is None:
            self._engines = self.hooks.engines()
        return {
            name: str(engine.version)
            for name, engine in sorted(self._engines.items())
            if self.options.allow_local_only_engines or not is_local_only(engine)
        }

    def _running_chunks(self) -> list[RunningChunk]:
        return [
            RunningChunk(chunk_id, lease.lease_token, self.progress.get(chunk_id, 0))
            for chunk_id, lease in sorted(self._running.items())
        ]

    def _progress_to_tell(self) -> bool:
        """Whether a chunk running for over ``progress_seconds`` moved since the last
        heartbeat."""
        limit = self.options.progress_seconds
        if limit <= 0:
            return False
        now = time.monotonic()
        for chunk_id in self._running:
            guard = self._guards.get(chunk_id)
            done = self.progress.get(chunk_id, 0)
            long_running = guard is not None and now - guard.started >= limit
            if long_running and done != self._sent_progress.get(chunk_id, 0):
                return True
        return False

    async def _heartbeat(self, creds: NodeCredentials) -> bool:
        """Send one heartbeat; False if the node should stop (it was removed)."""
        try:
            async with self._lease_lock:
                running = self._running_chunks()
                self._last_beat = anyio.current_time()
                reply = await self.transport.heartbeat(
                    creds,
                    Heartbeat(running=running, engines=self.info.engines, labels=self.info.labels),
                )
                self._sent_progress = {r.chunk_id: r.iterations_done for r in running}
        except AuthenticationFailed:
            log.error("the coordinator no longer knows this node (removed?); stopping")
            self.stats.last_error = "node removed by its owner"
            self.stop()
            return False
        except WowlabError as exc:
            self.stats.last_error = exc.message
            if isinstance(exc, TransportError):
                self.stats.connection_error = exc.message
            return True
        self._reached()
        if reply.owner is not None:
            self.stats.owner = reply.owner
        if reply.sharing is not None:
            self.stats.sharing = reply.sharing
        if reply.max_parallel:
            self.max_parallel = reply.max_parallel
            self.stats.max_workers = self.capacity
        for chunk_id in reply.cancelled_chunks:
            self.cancel_chunk(chunk_id)
        if reply.released_chunks:
            log.info("handed back %d lease(s) this node no longer runs", len(reply.released_chunks))
        return True

    async def _news_while_busy(self, creds: NodeCredentials) -> None:
        """While chunks run, listen on the transport's wake-up channel: the coordinator
        wakes it when a job is cancelled (or work arrives), and a heartbeat at once then
        learns which running chunks to stop, instead of at the next regular heartbeat."""
        while True:
            # One long poll per heartbeat period: a busy node costs its transport no more
            # calls than its heartbeats do.
            wait = max(self.options.heartbeat_seconds, 1.0)
            if not self._running:
                await anyio.sleep(0.05)
                continue
            started = anyio.current_time()
            try:
                await self.transport.wait_for_work(creds, wait)
            except WowlabError:
                await anyio.sleep(wait)
                continue
            woken = anyio.current_time() - started < 0.9 * wait
            if woken and self._running:
                await self._heartbeat(creds)
                await anyio.sleep(0.2)  # a burst of wake-ups costs one heartbeat at most

    async def _heartbeat_loop(self, creds: NodeCredentials) -> None:
        """A heartbeat every ``heartbeat_seconds`` (counted from the last one, whatever
        sent it), and one every ``progress_seconds`` while a long chunk makes progress."""
        while True:
            period = self.options.heartbeat_seconds
            step = self.options.progress_seconds
            # Never longer than a period after the last heartbeat: leases depend on it.
            wait = max(self._last_beat + period - anyio.current_time(), 0.0)
            await anyio.sleep(min(wait, step) if step > 0 else wait)
            due = anyio.current_time() - self._last_beat >= period * 0.999
            if not due and not self._progress_to_tell():
                continue
            if not await self._heartbeat(creds):
                return

    async def _work_loop(self, creds: NodeCredentials, tg: anyio.abc.TaskGroup) -> None:
        while not self.stopping:
            if self._paused:
                self.stats.state = "paused"
                await _first_of(self._resumed.wait, self._stopping.wait)
                continue
            free = self.capacity - len(self._running)
            if free <= 0:
                await self._wait_slot_or_stop()
                continue
            try:
                async with self._lease_lock:
                    leases = await self.transport.lease(creds, free)
                    for lease in leases:
                        self._running[lease.chunk_id] = lease
            except AuthenticationFailed:
                self.stats.last_error = "node removed by its owner"
                log.error("the coordinator rejected this node's token; stopping")
                break
            except WowlabError as exc:
                self.stats.last_error = exc.message
                log.warning("lease failed: %s", exc.message)
                await self._back_off(exc)
                continue
            self._reached()
            # Paused, or the worker limit lowered, while the lease call was out: what the
            # node will not run goes back at once.
            excess = len(leases) if self._paused else len(self._running) - self.capacity
            if leases and excess > 0:
                extra, leases = leases[-excess:], leases[:-excess]
                await self._hand_back_now(creds, extra)
            for lease in leases:
                tg.start_soon(self._run_lease, creds, lease)
            self.stats.busy_workers = len(self._running)
            self.stats.state = "working" if self._running else "idle"
            if not leases:
                with anyio.move_on_after(self.options.idle_wait_seconds):
                    await _first_of(lambda: self._wait_for_work(creds), self._stopping.wait)
        await self._drain(creds)

    async def _hand_back_now(self, creds: NodeCredentials, leases: list[Lease]) -> None:
        """Give back leases the node will not run (granted as it paused or lowered its
        worker limit)."""
        with anyio.CancelScope(shield=True):
            for lease in leases:
                self._running.pop(lease.chunk_id, None)
                try:
                    await self.transport.release(creds, [lease.chunk_id], lease.lease_token)
                except WowlabError as exc:
                    log.warning("could not hand chunk %s back: %s", lease.chunk_id, exc.message)
        self.stats.busy_workers = len(self._running)

    async def _wait_for_work(self, creds: NodeCredentials) -> None:
        # A push channel that fails is no reason to stop: fall back to waiting out the poll.
        try:
            await self.transport.wait_for_work(creds, self.options.idle_wait_seconds)
        except WowlabError as exc:
            self.stats.last_error = exc.message
            await anyio.sleep(self.options.idle_wait_seconds)

    async def _wait_slot_or_stop(self) -> None:
        self._slot_freed = anyio.Event()
        await _first_of(self._slot_freed.wait, self._stopping.wait)

    async def _drain(self, creds: NodeCredentials) -> None:
        self.stats.state = "stopping"
        self._emit("stopping", running=len(self._running))
        with anyio.move_on_after(self.options.drain_seconds):
            while self._running and not self._hand_back.is_set():
                self._slot_freed = anyio.Event()
                await self._slot_freed.wait()
        if self._running:
            by_token: dict[str, list[int]] = {}
            for lease in self._running.values():
                self._stop_chunk(lease.chunk_id, StopReason.HAND_BACK)
                by_token.setdefault(lease.lease_token, []).append(lease.chunk_id)
            with anyio.CancelScope(shield=True):
                for token, ids in by_token.items():
                    try:
                        await self.transport.release(creds, ids, token)
                    except WowlabError as exc:
                        log.warning("could not hand back chunks %s: %s", ids, exc.message)
            self._emit("released", chunks=sorted(self._running))

    def _engine(self, name: str) -> Engine:
        if self._engines is None:
            self._engines = self.hooks.engines()
        if name not in self._engines:
            raise WowlabError(f"engine {name!r} is not installed on this node")
        engine = self._engines[name]
        if is_local_only(engine) and not self.options.allow_local_only_engines:
            raise WowlabError(f"engine {name!r} runs only locally (wowlab sim), not for a pool")
        return engine

    async def _config(self, creds: NodeCredentials, config_hash: str) -> Any:
        config = await anyio.to_thread.run_sync(self.cache.get, config_hash)
        if config is None:
            payload = await self.transport.get_config(creds, config_hash)
            config = payload.config
            await anyio.to_thread.run_sync(self.cache.put, config_hash, config)
        self._config_names[config_hash] = config_name(config)
        return config

    def chunk_budget(self, lease: Lease) -> float:
        """Wall seconds this node gives the chunk: the lease's budget, within the owner's cap."""
        budget = self.options.max_chunk_seconds
        if lease.budget_seconds is not None and lease.budget_seconds > 0:
            budget = min(budget, lease.budget_seconds)
        return budget

    async def _run_lease(self, creds: NodeCredentials, lease: Lease) -> None:
        started = time.monotonic()
        guard = ChunkGuard(budget_seconds=self.chunk_budget(lease))
        self._guards[lease.chunk_id] = guard
        self.progress[lease.chunk_id] = 0
        try:
            engine = self._engine(lease.engine)
            key = f"{lease.engine}:{lease.config_hash}"
            if key not in self._prepared:
                config = await self._config(creds, lease.config_hash)
                self._prepared[key] = engine.prepare(config)
            prepared = self._prepared[key]
            guard.started = time.monotonic()  # the budget is for running, not fetching
            self._emit(
                "chunk-started",
                chunk_id=lease.chunk_id,
                job_id=lease.job_id,
                iterations=lease.iterations,
                config_name=self._config_names.get(lease.config_hash),
            )
            try:
                result = await run_guarded(
                    engine,
                    prepared,
                    lease,
                    guard,
                    memory_cap_mb=self.options.memory_cap_mb,
                    progress=partial(self.progress.__setitem__, lease.chunk_id),
                )
            except ChunkStopped:
                if guard.reason is None:
                    raise  # an engine stopping on its own: an error like any other
                await self._stopped(creds, lease, guard)
                return
            if lease.chunk_id in self._cancelled:
                self._emit("chunk-cancelled", chunk_id=lease.chunk_id)
                return
            elapsed = time.monotonic() - started
            outcomes = await self._report(
                creds,
                Completion(
                    chunk_id=lease.chunk_id,
                    lease_token=lease.lease_token,
                    result=result.to_dict(),
                    elapsed_seconds=round(elapsed, 4),
                ),
            )
            self.stats.chunks_completed += 1
            self.stats.iterations_completed += lease.iterations
            self._emit(
                "chunk-completed",
                chunk_id=lease.chunk_id,
                iterations=lease.iterations,
                seconds=elapsed,
                outcome=outcomes[0].outcome if outcomes else None,
            )
        except Exception as exc:
            message = error_message(exc)
            self.stats.chunks_failed += 1
            self.stats.last_error = message
            log.warning("chunk %s failed: %s", lease.chunk_id, message)
            self._emit("chunk-failed", chunk_id=lease.chunk_id, error=message)
            with anyio.CancelScope(shield=True):
                try:
                    await self.transport.fail(creds, lease.chunk_id, lease.lease_token, message)
                except WowlabError as report_exc:
                    log.warning("could not report the failure: %s", report_exc.message)
        finally:
            guard.stop_flag.set()  # cancelled (a node shutting down): let the engine go
            self._guards.pop(lease.chunk_id, None)
            self.progress.pop(lease.chunk_id, None)
            self._running.pop(lease.chunk_id, None)
            self._cancelled.discard(lease.chunk_id)
            self.stats.busy_workers = len(self._running)
            self._slot_freed.set()

    async def _stopped(self, creds: NodeCredentials, lease: Lease, guard: ChunkGuard) -> None:
        """A chunk its guard stopped: report it as its reason requires."""
        done = self.progress.get(lease.chunk_id, 0)
        if guard.reason == StopReason.CANCELLED:
            self._emit("chunk-cancelled", chunk_id=lease.chunk_id)
            return
        if guard.reason == StopReason.HAND_BACK:
            # _drain hands back what still runs; this one may have ended before it looked.
            with anyio.CancelScope(shield=True):
                try:
                    await self.transport.release(creds, [lease.chunk_id], lease.lease_token)
                except WowlabError as exc:
                    log.warning("could not hand chunk %s back: %s", lease.chunk_id, exc.message)
            return
        if guard.reason == StopReason.MEMORY:
            raise WowlabError(f"{guard.detail} (stopped after {done:,} iterations)")
        self.stats.chunks_over_budget += 1
        detail = f"{guard.detail} (stopped after {done:,} of {lease.iterations:,} iterations)"
        log.warning("chunk %s %s", lease.chunk_id, detail)
        self._emit(
            "chunk-over-budget",
            chunk_id=lease.chunk_id,
            budget=guard.budget_seconds,
            iterations_done=done,
            iterations=lease.iterations,
        )
        with anyio.CancelScope(shield=True):
            try:
                if accepts_reason(self.transport):
                    await self.transport.fail(
                        creds,
                        lease.chunk_id,
                        lease.lease_token,
                        detail,
                        reason=FailReason.OVER_BUDGET.value,
                    )
                else:
                    await self.transport.fail(creds, lease.chunk_id, lease.lease_token, detail)
            except WowlabError as exc:
                log.warning("could not report the chunk over budget: %s", exc.message)

    async def _report(self, creds: NodeCredentials, completion: Completion) -> list[Any]:
        # A result is worth keeping: retry while the coordinator is unreachable, until the
        # lease would have run out anyway.
        deadline = time.monotonic() + self.options.drain_seconds
        while True:
            try:
                with anyio.CancelScope(shield=True):
                    return await self.transport.complete(creds, [completion])
            except TransportError as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("could not report chunk %s yet: %s", completion.chunk_id, exc.message)
                await anyio.sleep(self.options.retry_seconds)


__all__ = [
    "AgentOptions",
    "ChunkProgress",
    "NodeAgent",
    "NodeStats",
    "__version__",
    "config_name",
]
