"""Cutting a job into chunks (pure functions).

The built-in planner picks a chunk size from a target chunk duration and the measured
throughput of the nodes that may run the job, bounded, and never divides by zero: a job
with no eligible node is still planned (with a default throughput) and waits as pending.
Chunks are pulled by nodes later, so the plan does not name nodes (seed defect 1).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Iterations per second of one worker assumed before any node has been measured.
DEFAULT_WORKER_THROUGHPUT = 200.0
#: How long one chunk should take on one worker.
TARGET_CHUNK_SECONDS = 5.0
MIN_CHUNK_ITERATIONS = 50
MAX_CHUNK_ITERATIONS = 100_000
#: Upper bound of chunks per job, so a huge job does not create millions of rows.
MAX_CHUNKS_PER_JOB = 20_000


@dataclass(frozen=True, slots=True)
class Capacity:
    """The part of the pool that may run a job, as measured now.

    Attributes:
        nodes: eligible nodes that are online.
        workers: their summed ``max_parallel``.
        iterations_per_second: summed measured throughput (0 when nothing is measured).
        start: first global iteration to plan (non-zero for a later ``target_error`` round).
        iterations: how many iterations this plan covers.
    """

    nodes: int
    workers: int
    iterations_per_second: float
    start: int = 0
    iterations: int = 0


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """One planned chunk: iterations ``[seed_offset, seed_offset + iterations)``."""

    seed_offset: int
    iterations: int


def default_chunk_size(total: int, capacity: Capacity) -> int:
    """Iterations per chunk: about ``TARGET_CHUNK_SECONDS`` on one worker, bounded.

    With several workers, a small job is cut so that every worker gets about two chunks;
    the result is always between 1 and ``total``.
    """
    workers = max(capacity.workers, 1)
    per_worker = (
        capacity.iterations_per_second / workers
        if capacity.iterations_per_second > 0
        else DEFAULT_WORKER_THROUGHPUT
    )
    # min() first: a node-reported throughput can overflow to inf, which int() rejects.
    size = int(min(per_worker * TARGET_CHUNK_SECONDS, MAX_CHUNK_ITERATIONS))
    size = min(size, -(-total // (2 * workers)))  # ceil: about two chunks per worker
    size = max(size, MIN_CHUNK_ITERATIONS, -(-total // MAX_CHUNKS_PER_JOB))
    return max(1, min(size, MAX_CHUNK_ITERATIONS, total))


def split_evenly(start: int, total: int, chunk_size: int) -> list[ChunkPlan]:
    """Cut ``[start, start + total)`` into chunks of ``chunk_size`` (the last may be shorter)."""
    if total <= 0:
        return []
    size = max(1, chunk_size)
    return [
        ChunkPlan(seed_offset=start + offset, iterations=min(size, total - offset))
        for offset in range(0, total, size)
    ]


def split_into(start: int, total: int, chunks: int) -> list[ChunkPlan]:
    """Cut ``[start, start + total)`` into ``chunks`` near-equal chunks (sizes differ by ≤ 1)."""
    if total <= 0:
        return []
    chunks = max(1, min(chunks, total))
    base, extra = divmod(total, chunks)
    plans: list[ChunkPlan] = []
    offset = start
    for i in range(chunks):
        size = base + (1 if i < extra else 0)
        plans.append(ChunkPlan(seed_offset=offset, iterations=size))
        offset += size
    return plans


def check_plan(plans: list[ChunkPlan] | tuple[ChunkPlan, ...], start: int, total: int) -> None:
    """Raise ``ValueError`` unless ``plans`` tile ``[start, start + total)`` exactly."""
    offset = start
    for plan in sorted(plans, key=lambda p: p.seed_offset):
        if plan.iterations <= 0:
            raise ValueError(f"chunk at {plan.seed_offset} has {plan.iterations} iterations")
        if plan.seed_offset != offset:
            raise ValueError(f"chunks leave a gap or overlap at iteration {offset}")
        offset += plan.iterations
    if offset != start + total:
        raise ValueError(f"chunks cover up to {offset}, not {start + total}")


__all__ = [
    "DEFAULT_WORKER_THROUGHPUT",
    "MAX_CHUNK_ITERATIONS",
    "MIN_CHUNK_ITERATIONS",
    "TARGET_CHUNK_SECONDS",
    "Capacity",
    "ChunkPlan",
    "check_plan",
    "default_chunk_size",
    "split_evenly",
    "split_into",
]
