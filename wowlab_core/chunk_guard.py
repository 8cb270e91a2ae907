"""Guarding a volunteer's machine while it runs a chunk: stop flag, time budget, memory cap.

The node agent gives each running chunk a :class:`ChunkGuard`. Whoever wants the chunk to
end (a cancel from the coordinator, a hand-back, the time budget, the memory cap) calls
:meth:`ChunkGuard.stop` with a reason; the engine sees the flag between iterations and
raises :class:`~wowlab_core.errors.ChunkStopped`, and the agent reports according to the
reason. :func:`run_guarded` runs a chunk in a worker thread with :func:`watch_chunk`, the
watchdog for the budget and the memory cap, beside it.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import anyio
import anyio.to_thread

from wowlab_core.engines import Engine, ProgressCallback, run_engine_chunk, supports_interrupt
from wowlab_core.errors import ChunkStopped
from wowlab_core.protocol import Lease
from wowlab_core.results import ChunkResult

log = logging.getLogger(__name__)

#: Watchdog period: budget and memory are checked this often.
WATCH_SECONDS = 0.1


class StopReason(StrEnum):
    """Why a running chunk was stopped."""

    CANCELLED = "cancelled"  # its job was cancelled or failed: nothing to report
    HAND_BACK = "hand-back"  # the node is stopping and gives its chunks back
    OVER_BUDGET = "over-budget"  # ran past its time budget: reported, not the node's fault
    MEMORY = "memory"  # the node process went over its memory cap: reported as an error


@dataclass
class ChunkGuard:
    """The stop flag of one running chunk, and why it was set (the first reason wins)."""

    budget_seconds: float
    stop_flag: threading.Event = field(default_factory=threading.Event)
    reason: StopReason | None = None
    detail: str = ""
    started: float = field(default_factory=time.monotonic)

    def stop(self, reason: StopReason, detail: str = "") -> None:
        """Ask the chunk to stop (thread-safe; later reasons are ignored)."""
        if self.reason is None:
            self.reason = reason
            self.detail = detail
        self.stop_flag.set()

    @property
    def stopped(self) -> bool:
        """Whether a stop was asked for."""
        return self.stop_flag.is_set()

    def elapsed(self) -> float:
        """Seconds since the chunk started."""
        return time.monotonic() - self.started


def process_rss_bytes() -> int | None:
    """Resident memory of this process, or None where it cannot be read.

    Linux: ``/proc/self/statm``; elsewhere psutil if it is installed (``wowlab[node]``
    installs it).
    """
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/statm", encoding="ascii") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            pass
    try:
        import psutil
    except ImportError:
        return None
    rss: int = psutil.Process().memory_info().rss
    return rss


_warned: list[bool] = []


def _warn_no_rss() -> None:
    if not _warned:
        _warned.append(True)
        log.warning("cannot read this process's memory use: no memory cap (pip install psutil)")


async def watch_chunk(guard: ChunkGuard, *, memory_cap_bytes: int | None) -> None:
    """Stop the chunk when it runs past its budget or the process past the memory cap.

    Returns once the chunk is stopped, by this watchdog or anyone else.
    """
    while not guard.stopped:
        await anyio.sleep(WATCH_SECONDS)
        if guard.elapsed() >= guard.budget_seconds:
            guard.stop(
                StopReason.OVER_BUDGET,
                f"over budget: still running after {guard.elapsed():.1f} s, its budget is "
                f"{guard.budget_seconds:g} s",
            )
        elif memory_cap_bytes is not None:
            rss = process_rss_bytes()
            if rss is None:
                _warn_no_rss()
            elif rss > memory_cap_bytes:
                guard.stop(
                    StopReason.MEMORY,
                    f"memory cap exceeded: the node process used {rss / 2**20:,.0f} MiB, "
                    f"its cap is {memory_cap_bytes / 2**20:,.0f} MiB",
                )


async def run_guarded(
    engine: Engine,
    prepared: Any,
    lease: Lease,
    guard: ChunkGuard,
    *,
    memory_cap_mb: float | None,
    progress: ProgressCallback,
) -> ChunkResult:
    """Run a leased chunk in a worker thread under ``guard``, with the watchdog beside it.

    An engine without stop support cannot be interrupted: once its guard is stopped, its
    thread is left to finish on its own and this returns at once.

    Raises:
        ChunkStopped: the guard stopped the chunk (``guard.reason`` says why).
    """
    cap = int(memory_cap_mb * 2**20) if memory_cap_mb else None
    interruptible = supports_interrupt(engine)
    abandon = anyio.CancelScope()
    failure: Exception | None = None
    result: ChunkResult | None = None

    async def watch() -> None:
        await watch_chunk(guard, memory_cap_bytes=cap)
        if not interruptible:
            log.warning("engine %s cannot be stopped; abandoning its chunk", engine.name)
            abandon.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        try:
            with abandon:
                result = await anyio.to_thread.run_sync(
                    lambda: run_engine_chunk(
                        engine,
                        prepared,
                        seed=lease.seed,
                        seed_offset=lease.seed_offset,
                        iterations=lease.iterations,
                        stop=guard.stop_flag,
                        progress=progress,
                    ),
                    abandon_on_cancel=True,
                )
        except Exception as exc:  # re-raised outside the task group, not in a group
            failure = exc
        finally:
            tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if result is None:
        raise ChunkStopped(f"abandoned: {guard.detail or guard.reason}")
    return result


def accepts_reason(transport: Any) -> bool:
    """Whether ``transport.fail`` takes a ``reason`` (transports older than it do not)."""
    try:
        params = inspect.signature(transport.fail).parameters
    except (TypeError, ValueError, AttributeError):
        return False
    return "reason" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


__all__ = [
    "WATCH_SECONDS",
    "ChunkGuard",
    "StopReason",
    "accepts_reason",
    "process_rss_bytes",
    "run_guarded",
    "watch_chunk",
]
