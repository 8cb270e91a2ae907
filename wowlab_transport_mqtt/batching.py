"""Requests of one kind carried out together: fewer, larger database transactions.

A :class:`Batcher` collects the requests that arrive while the previous batch is being
carried out and hands them to ``run_batch`` in one call (one coordinator transaction).
Nothing waits to fill a batch: a lone request goes at once, and under load the batches
grow by themselves (natural batching), up to ``max_items``. ``workers`` batches may run
at once (each takes a database connection).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")
R = TypeVar("R")


class _Waiting(Generic[T, R]):
    def __init__(self, item: T) -> None:
        self.item = item
        self.done = anyio.Event()
        self.result: R | None = None
        self.error: BaseException | None = None


class Batcher(Generic[T, R]):
    """Carries out items in batches. :meth:`run` is a task of the bridge's task group."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[T]], Sequence[R]],
        *,
        max_items: int = 64,
        workers: int = 2,
    ) -> None:
        self.run_batch = run_batch
        self.max_items = max_items
        self.workers = workers
        self._queue: list[_Waiting[T, R]] = []
        self._ready = anyio.Event()
        #: Batches carried out and items in them (for logs, tests and benchmarks).
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        """Carry ``item`` out with the next batch; its result (or its batch's error)."""
        waiting: _Waiting[T, R] = _Waiting(item)
        self._queue.append(waiting)
        self._ready.set()
        await waiting.done.wait()
        if waiting.error is not None:
            raise waiting.error
        return waiting.result  # type: ignore[return-value]

    async def run(self) -> None:
        """Carry batches out until cancelled."""
        async with anyio.create_task_group() as tg:
            for _ in range(self.workers):
                tg.start_soon(self._work)

    async def _work(self) -> None:
        while True:
            while not self._queue:
                await self._ready.wait()
                self._ready = anyio.Event()
            batch = self._queue[: self.max_items]
            del self._queue[: self.max_items]
            if self._queue:
                self._ready.set()
            try:
                results = await anyio.to_thread.run_sync(self.run_batch, [w.item for w in batch])
            except Exception as exc:
                for waiting in batch:
                    waiting.error = exc
                    waiting.done.set()
                continue
            self.batches += 1
            self.items += len(batch)
            for waiting, result in zip(batch, results, strict=True):
                waiting.result = result
                waiting.done.set()


__all__ = ["Batcher"]
