"""The node agent in a worker thread with its own event loop, bridged to Qt by signals.

The GUI is a face on :class:`wowlab_core.agent.NodeAgent`, the code ``wowlab node run``
runs; nothing here decides what a node does with a chunk. The agent's loop runs in a
thread of its own (anyio on asyncio), so the Qt event loop never waits on the network or
an engine. Controls go the other way without blocking: :meth:`AgentRunner.call` queues a
function on the agent's loop (``call_soon_threadsafe``); the loop answers through a
:class:`~wowlab_gui_qt.mailbox.Mailbox`, and the runner's signals are emitted in the GUI
thread (the worker thread never touches a Qt object).

The runner adds the desktop's pause rules around the agent: the volunteer's pause, a
listed program running, the machine not idle long enough, the engine warming up. The
agent is paused while any rule holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import anyio
import anyio.abc
import anyio.to_thread
from PySide6.QtCore import QObject, Signal

from wowlab_core import __version__
from wowlab_core.agent import AgentOptions, ChunkProgress, NodeAgent
from wowlab_core.errors import TransportError, WowlabError
from wowlab_core.node_settings import NodeSettings, platform_string
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import ClaimStatus, NodeCredentials, NodeInfo
from wowlab_core.scheduler import error_message
from wowlab_gui_qt.mailbox import Mailbox
from wowlab_gui_qt.settings import GuiSettings, cpu_count, workers_for
from wowlab_gui_qt.watchers import idle_seconds, programs_running

log = logging.getLogger(__name__)

#: Why the node is paused, besides the volunteer's own pause (key: text shown).
USER, PROGRAM, IDLE, WARMUP = "user", "program", "idle", "warm-up"


@dataclass(frozen=True)
class NodeSnapshot:
    """What the views show, taken in the agent's loop twice a second."""

    state: str
    pause_reasons: dict[str, str] = field(default_factory=dict)
    node_id: int | None = None
    claim_code: str | None = None
    owner: str | None = None
    sharing: str | None = None
    busy_workers: int = 0
    max_workers: int = 0
    cores: int = 1
    chunks: tuple[ChunkProgress, ...] = ()
    chunks_completed: int = 0
    chunks_failed: int = 0
    #: Iterations finished, plus those done so far in running chunks (for sims/s).
    iterations_done: int = 0
    connection_error: str | None = None
    last_error: str | None = None
    #: ``(engine, engines done, engines to warm up)`` while the engines warm up.
    warmup: tuple[str, int, int] | None = None
    taken_at: float = field(default_factory=time.monotonic)


@dataclass
class RunnerOptions:
    """Timings of the runner (tests make them short)."""

    snapshot_seconds: float = 0.5
    watch_seconds: float = 3.0
    warm_up: bool = True
    agent: AgentOptions = field(default_factory=AgentOptions)


class AgentRunner(QObject):
    """Runs one :class:`NodeAgent` for the node in ``settings``, in a thread of its own.

    Its signals are emitted in the GUI thread, by ``mailbox`` (the window's; by default
    one of its own)."""

    snapshot_ready = Signal(object)  # NodeSnapshot
    claim_code_shown = Signal(object)  # ClaimStatus
    node_event = Signal(str, object)  # the agent's events: name, data
    registered = Signal(object)  # NodeCredentials (to be saved)
    crashed = Signal(str)  # the worker thread failed: the reason
    stopped = Signal()

    def __init__(
        self,
        settings: NodeSettings,
        *,
        hooks: Hooks,
        save: Callable[[], None],
        options: RunnerOptions | None = None,
        mailbox: Mailbox | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._mailbox = mailbox if mailbox is not None else Mailbox()
        self.settings = settings
        self._save = save
        self.gui = GuiSettings.of(settings)
        self.hooks = hooks
        self.options = options or RunnerOptions()
        self.agent: NodeAgent | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._reasons: dict[str, str] = {USER: "paused by you"} if self.gui.paused else {}
        self._warmup: tuple[str, int, int] | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._done = threading.Event()

    # --- from the GUI thread --------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._thread_main, name="wowlab-agent", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the worker thread runs."""
        return self._thread is not None and not self._done.is_set()

    def call(self, function: Callable[[], None]) -> None:
        """Run ``function`` in the agent's loop soon; never blocks the caller."""
        with self._lock:
            if self._loop is None:
                self._pending.append(function)
                return
            loop = self._loop
        with contextlib.suppress(RuntimeError):  # the loop has closed: the agent is gone
            loop.call_soon_threadsafe(self._guarded, function)

    def pause(self, paused: bool) -> None:
        """The volunteer pauses (leases are handed back) or resumes."""
        self.call(lambda: self._set_reason(USER, "paused by you" if paused else None))

    def set_worker_limit(self, workers: int) -> None:
        """Run at most ``workers`` chunks at once."""
        self.call(lambda: self.agent.set_worker_limit(workers) if self.agent else None)

    def set_watch_rules(self, gui: GuiSettings) -> None:
        """New pause rules (programs, idle minutes)."""
        self.call(lambda: setattr(self, "gui", gui))

    def warm_up_again(self) -> None:
        """Warm the engines up (again), holding work back meanwhile."""

        def start() -> None:
            if self._tg is not None and self._warmup is None:
                self._set_reason(WARMUP, "preparing the engines")
                self._tg.start_soon(self._warm_up)

        self.call(start)

    def stop(self, *, hand_back: bool = False) -> None:
        """Stop the node: finish running chunks, or with ``hand_back`` give them back."""
        self.call(lambda: self.agent.stop(hand_back=hand_back) if self.agent else None)

    def wait(self, timeout: float) -> bool:
        """Wait for the worker thread to end (tests, shutdown); True if it did."""
        return self._done.wait(timeout)

    # --- in the worker thread -------------------------------------------------------

    def _emit(self, signal: str, *args: object) -> None:
        """Emit the signal named ``signal`` in the GUI thread (from any thread)."""
        self._mailbox.post(self._emit_now, signal, args)

    def _emit_now(self, signal: str, args: tuple[object, ...]) -> None:
        getattr(self, signal).emit(*args)

    def _guarded(self, function: Callable[[], None]) -> None:
        try:
            function()
        except Exception as exc:
            log.exception("a control of the node failed")
            self._emit("crashed", error_message(exc))

    def _thread_main(self) -> None:
        try:
            anyio.run(self._main)
        except BaseException as exc:  # the app keeps running: say what happened
            if not isinstance(exc, TransportError):
                log.exception("the node stopped on an error")
            self._emit("crashed", _reason(exc))
        finally:
            # Done first: the window's ``stopped`` slot reads ``running`` (now False).
            self._done.set()
            self._emit("stopped")

    async def _main(self) -> None:
        settings = self.settings
        factory = self.hooks.transport(settings.transport)
        transport = factory(settings.url)
        options = replace(
            self.options.agent,
            max_chunk_seconds=settings.max_chunk_seconds,
            memory_cap_mb=settings.memory_cap_mb,
        )
        agent = NodeAgent(
            transport,
            info=NodeInfo(
                name=settings.name,
                max_parallel=settings.max_parallel,
                cores=os.cpu_count(),
                platform=platform_string(),
                version=__version__,
            ),
            hooks=self.hooks,
            credentials=settings.credentials,
            options=options,
            on_registered=self._registered,
            on_claim_code=self._claim_code,
            on_event=lambda event, data: self._emit("node_event", event, data),
        )
        self.agent = agent
        agent.set_worker_limit(self._workers())
        if self.options.warm_up:
            self._reasons[WARMUP] = "preparing the engines"
        self._apply_pause()
        with self._lock:
            self._loop = asyncio.get_running_loop()
            pending, self._pending = self._pending, []
        for function in pending:
            self._guarded(function)
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._snapshots)
                tg.start_soon(self._watch)
                if self.options.warm_up:
                    tg.start_soon(self._warm_up)
                try:
                    await agent.run()
                finally:
                    tg.cancel_scope.cancel()
        except TransportError:
            if not agent.stopping:
                raise
            # Stopped before the coordinator could be reached: a normal stop.
        finally:
            with anyio.CancelScope(shield=True):
                await transport.aclose()
            self._emit("snapshot_ready", self._snapshot())

    def _registered(self, creds: NodeCredentials) -> None:
        # Saved here, at once: the token is shown only once, and the GUI thread may be busy.
        self.settings.node_id, self.settings.token = creds.node_id, creds.token
        self._save()
        self._emit("registered", creds)

    def _claim_code(self, status: ClaimStatus) -> None:
        self._emit("claim_code_shown", status)

    def _workers(self) -> int:
        return workers_for(
            cores=cpu_count(),
            cpu_limit_percent=self.gui.cpu_limit_percent,
            max_parallel=self.settings.max_parallel,
        )

    def _set_reason(self, key: str, text: str | None) -> None:
        if text is None:
            self._reasons.pop(key, None)
        else:
            self._reasons[key] = text
        self._apply_pause()

    def _apply_pause(self) -> None:
        agent = self.agent
        if agent is None:
            return
        if self._reasons and not agent.paused:
            log.info("pausing: %s", "; ".join(self._reasons.values()))
            agent.pause()
        elif not self._reasons and agent.paused:
            log.info("resuming work")
            agent.resume()

    async def _warm_up(self) -> None:
        """Compile the engines once before the first chunk, so it is not late."""
        engines = self.hooks.engines()
        advertised = self.agent.info.engines if self.agent and self.agent.info.engines else {}
        names = [n for n in sorted(advertised) if callable(getattr(engines[n], "warm_up", None))]
        try:
            for done, name in enumerate(names):
                self._warmup = (name, done, len(names))
                log.info("warming up the %s engine (compiles once)", name)
                started = time.monotonic()
                await anyio.to_thread.run_sync(getattr(engines[name], "warm_up"))  # noqa: B009
                log.info("%s engine ready in %.1f s", name, time.monotonic() - started)
        except Exception as exc:
            log.warning("engine warm-up failed: %s", error_message(exc))
        finally:
            self._warmup = None
            self._set_reason(WARMUP, None)
            self._emit("node_event", "engine-ready", {"engines": names})

    async def _watch(self) -> None:
        """The pause rules that look at the machine: programs, idle time."""
        while True:
            gui = self.gui
            running: list[str] = []
            if gui.pause_on_programs and gui.pause_programs:
                running = await anyio.to_thread.run_sync(programs_running, gui.pause_programs)
            self._set_reason(PROGRAM, f"{', '.join(running)} running" if running else None)
            idle_text = None
            if gui.idle_minutes > 0:
                idle = await anyio.to_thread.run_sync(idle_seconds)
                if idle is not None and idle < gui.idle_minutes * 60:
                    idle_text = f"waiting for {gui.idle_minutes} idle minutes"
            self._set_reason(IDLE, idle_text)
            await anyio.sleep(self.options.watch_seconds)

    async def _snapshots(self) -> None:
        while True:
            self._emit("snapshot_ready", self._snapshot())
            await anyio.sleep(self.options.snapshot_seconds)

    def _snapshot(self) -> NodeSnapshot:
        agent = self.agent
        if agent is None:
            return NodeSnapshot(state="starting", cores=cpu_count())
        stats = agent.stats
        chunks = tuple(agent.running_chunks())
        creds = agent.credentials
        return NodeSnapshot(
            state=stats.state,
            pause_reasons=dict(self._reasons) if agent.paused else {},
            node_id=creds.node_id if creds else None,
            claim_code=stats.claim_code,
            owner=stats.owner,
            sharing=stats.sharing,
            busy_workers=len(chunks),
            max_workers=agent.capacity,
            cores=cpu_count(),
            chunks=chunks,
            chunks_completed=stats.chunks_completed,
            chunks_failed=stats.chunks_failed,
            iterations_done=stats.iterations_completed + sum(c.iterations_done for c in chunks),
            connection_error=stats.connection_error,
            last_error=stats.last_error,
            warmup=self._warmup,
        )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _reason(exc.exceptions[0])
    if isinstance(exc, WowlabError):
        return exc.message
    return error_message(exc) if isinstance(exc, Exception) else type(exc).__name__


__all__ = ["IDLE", "PROGRAM", "USER", "WARMUP", "AgentRunner", "NodeSnapshot", "RunnerOptions"]
