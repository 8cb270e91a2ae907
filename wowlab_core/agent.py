"""The node runtime: register, show the claim code, wait to be claimed, then work.

Transport-agnostic and headless (the Qt GUI and the CLI drive the same agent). Work loop:
lease as many chunks as there are free workers -> fetch each config through the cache ->
run it on the engine in a worker thread -> report the result. Heartbeats keep the leases
alive. Stopping is graceful: no new leases, running chunks finish (or, past the drain
timeout, are handed back), then the node says goodbye.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from wowlab_core import __version__
from wowlab_core.cache import CacheSettings, ConfigCache, MemoryDiskCache
from wowlab_core.engines import Engine
from wowlab_core.errors import AuthenticationFailed, TransportError, WowlabError
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import ClaimStatus, Completion, Lease, NodeCredentials, NodeInfo
from wowlab_core.scheduler import error_message
from wowlab_core.transport import NodeTransport

log = logging.getLogger(__name__)


@dataclass
class NodeStats:
    """Live figures of a node, for dashboards."""

    state: str = "starting"  # starting, waiting-for-claim, idle, working, stopping, stopped
    claim_code: str | None = None
    owner: str | None = None
    busy_workers: int = 0
    max_workers: int = 0
    chunks_completed: int = 0
    chunks_failed: int = 0
    iterations_completed: int = 0
    started_at: float = field(default_factory=time.monotonic)
    last_error: str | None = None

    @property
    def iterations_per_second(self) -> float:
        """Average simulation speed since start."""
        return self.iterations_completed / max(time.monotonic() - self.started_at, 1e-9)


@dataclass
class AgentOptions:
    """Timings of the agent."""

    heartbeat_seconds: float = 15.0
    idle_wait_seconds: float = 2.0
    claim_wait_seconds: float = 25.0
    drain_seconds: float = 60.0
    retry_seconds: float = 2.0


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
        self.info = info
        self.hooks = hooks
        self.credentials = credentials
        self.cache: ConfigCache = (
            cache or hooks.config_cache(settings=CacheSettings()) or MemoryDiskCache()
        )
        self.options = options or AgentOptions()
        self.on_registered = on_registered
        self.on_claim_code = on_claim_code
        self.on_event = on_event
        self.stats = NodeStats(max_workers=info.max_parallel)
        self.max_parallel = info.max_parallel
        self._stopping = anyio.Event()
        self._hand_back = anyio.Event()
        self._engines: dict[str, Engine] | None = None
        self._prepared: dict[str, Any] = {}
        self._running: dict[int, Lease] = {}
        self._cancelled: set[int] = set()
        self._slot_freed = anyio.Event()

    # --- control --------------------------------------------------------------------

    def stop(self, *, hand_back: bool = False) -> None:
        """Ask the agent to stop: finish running chunks, or with ``hand_back`` give them
        back to the coordinator right away (call from the event loop)."""
        self._stopping.set()
        if hand_back:
            self._hand_back.set()
        self._slot_freed.set()

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
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._heartbeat_loop, creds)
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
                await self._sleep_or_stop(self.options.retry_seconds)
                if self.stopping:
                    raise
        self.credentials = NodeCredentials(node_id=reg.node_id, token=reg.token)
        if self.on_registered is not None:
            self.on_registered(self.credentials)
        self._emit("registered", node_id=reg.node_id)
        return self.credentials

    async def wait_until_claimed(self, creds: NodeCredentials) -> bool:
        """Show the claim code until an owner claims the node. False if stopped first."""
        shown: str | None = None
        while not self.stopping:
            outcome = await self._ask_claim_status(
                creds, wait=0.0 if shown is None else self.options.claim_wait_seconds
            )
            if outcome is None:  # stopped while waiting
                return False
            if isinstance(outcome, TransportError):
                self.stats.last_error = outcome.message
                await self._sleep_or_stop(self.options.retry_seconds)
                continue
            status = outcome
            if status.claimed:
                self.stats.owner = status.owner
                self.stats.claim_code = None
                if status.max_parallel:
                    self.max_parallel = status.max_parallel
                    self.stats.max_workers = status.max_parallel
                if status.heartbeat_seconds:
                    self.options.heartbeat_seconds = min(
                        self.options.heartbeat_seconds, status.heartbeat_seconds
                    )
                return True
            self.stats.state = "waiting-for-claim"
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

    # --- work -----------------------------------------------------------------------

    async def _heartbeat_loop(self, creds: NodeCredentials) -> None:
        while True:
            await anyio.sleep(self.options.heartbeat_seconds)
            try:
                reply = await self.transport.heartbeat(creds)
            except AuthenticationFailed:
                log.error("the coordinator no longer knows this node (removed?); stopping")
                self.stats.last_error = "node removed by its owner"
                self.stop()
                return
            except WowlabError as exc:
                self.stats.last_error = exc.message
                continue
            if reply.max_parallel:
                self.max_parallel = reply.max_parallel
                self.stats.max_workers = reply.max_parallel
            for chunk_id in reply.cancelled_chunks:
                if chunk_id in self._running:
                    self._cancelled.add(chunk_id)

    async def _work_loop(self, creds: NodeCredentials, tg: anyio.abc.TaskGroup) -> None:
        while not self.stopping:
            free = self.max_parallel - len(self._running)
            if free <= 0:
                await self._wait_slot_or_stop()
                continue
            try:
                leases = await self.transport.lease(creds, free)
            except AuthenticationFailed:
                self.stats.last_error = "node removed by its owner"
                log.error("the coordinator rejected this node's token; stopping")
                break
            except WowlabError as exc:
                self.stats.last_error = exc.message
                log.warning("lease failed: %s", exc.message)
                await self._sleep_or_stop(self.options.retry_seconds)
                continue
            for lease in leases:
                self._running[lease.chunk_id] = lease
                tg.start_soon(self._run_lease, creds, lease)
            self.stats.busy_workers = len(self._running)
            self.stats.state = "working" if self._running else "idle"
            if not leases:
                with anyio.move_on_after(self.options.idle_wait_seconds):
                    await _first_of(lambda: self._wait_for_work(creds), self._stopping.wait)
        await self._drain(creds)

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
        return self._engines[name]

    async def _config(self, creds: NodeCredentials, config_hash: str) -> Any:
        config = await anyio.to_thread.run_sync(self.cache.get, config_hash)
        if config is None:
            payload = await self.transport.get_config(creds, config_hash)
            config = payload.config
            await anyio.to_thread.run_sync(self.cache.put, config_hash, config)
        return config

    async def _run_lease(self, creds: NodeCredentials, lease: Lease) -> None:
        started = time.monotonic()
        try:
            engine = self._engine(lease.engine)
            key = f"{lease.engine}:{lease.config_hash}"
            if key not in self._prepared:
                config = await self._config(creds, lease.config_hash)
                self._prepared[key] = engine.prepare(config)
            prepared = self._prepared[key]
            result = await anyio.to_thread.run_sync(
                lambda: engine.run_chunk(
                    prepared,
                    seed=lease.seed,
                    seed_offset=lease.seed_offset,
                    iterations=lease.iterations,
                ),
                abandon_on_cancel=True,  # a stopping node hands the chunk back instead
            )
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
            self._running.pop(lease.chunk_id, None)
            self._cancelled.discard(lease.chunk_id)
            self.stats.busy_workers = len(self._running)
            self._slot_freed.set()

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


__all__ = ["AgentOptions", "NodeAgent", "NodeStats", "__version__"]
