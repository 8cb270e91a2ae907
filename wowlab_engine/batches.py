"""Running a chunk in short sub-batches, so that a node can stop it and see its progress.

The compiled loop cannot be interrupted from outside, so a chunk that must be stoppable is
cut into sub-batches of iterations, each taking about ``BATCH_SECONDS``; the stop flag is
checked and progress reported between them. Iteration ``k`` always runs with randomness
from ``(seed, k)`` and results merge exactly, so the merged result is the same as the
chunk's run in one go (``tests/engine/test_interrupt.py`` checks it byte for byte).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from wowlab_core.engines import ProgressCallback
from wowlab_core.errors import ChunkStopped
from wowlab_core.results import ChunkResult

#: A sub-batch aims at this long; the stop flag is checked between sub-batches.
BATCH_SECONDS = 0.1
#: A sub-batch is at most this many times the previous one (the first is one iteration).
MAX_GROWTH = 8


def run_in_batches(
    run_range: Callable[[int, int], ChunkResult],
    *,
    seed_offset: int,
    iterations: int,
    stop: threading.Event | None,
    progress: ProgressCallback | None,
) -> ChunkResult:
    """Run ``[seed_offset, seed_offset + iterations)`` as ``run_range(offset, count)`` calls.

    Raises:
        ChunkStopped: ``stop`` was set before the last sub-batch; it carries the iterations
            done and their exact result.
    """
    merged: ChunkResult | None = None
    done = 0
    size = 1
    while done < iterations:
        if stop is not None and stop.is_set():
            raise ChunkStopped(
                f"stopped after {done:,} of {iterations:,} iterations",
                iterations_done=done,
                partial=merged,
            )
        count = min(size, iterations - done)
        started = time.perf_counter()
        part = run_range(seed_offset + done, count)
        elapsed = time.perf_counter() - started
        merged = part if merged is None else merged.merge(part)
        done += count
        if progress is not None:
            progress(done)
        rate = count / max(elapsed, 1e-6)
        size = max(1, min(int(rate * BATCH_SECONDS), count * MAX_GROWTH))
    assert merged is not None
    return merged


__all__ = ["BATCH_SECONDS", "run_in_batches"]
