"""Cutting a job into chunks, and how long a chunk may run (pure functions).

The built-in planner picks a chunk size from a target chunk duration and what one
iteration of the job's config costs (measured at submit, see :mod:`wowlab_core.cost`):
its engine events per iteration against the events per second the eligible nodes have
shown, and its seconds per iteration on the machine that measured it. Nodes' speeds are
kept in events per second because an iteration rate measured on one config says nothing
about another (one config can cost a thousand times another per iteration). Without a
known cost it falls back to the nodes' iteration rate. It never divides by zero: a job
with no eligible node is still planned (with a default throughput) and waits as pending.
Chunks are pulled by nodes later, so the plan does not name nodes (seed defect 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Iterations per second of one worker assumed when neither the config's cost nor any
#: node has been measured.
DEFAULT_WORKER_THROUGHPUT = 200.0
#: Engine events per second of one typical worker (the compiled engine does 5-8 M on the
#: example configs on one core of the 2-core development machine; benchmarks/README.md).
DEFAULT_WORKER_EVENTS_PER_SECOND = 5_000_000.0
#: How long one chunk should take on one worker.
TARGET_CHUNK_SECONDS = 5.0
#: A chunk of a config of known cost is not cut below this many seconds of work.
MIN_CHUNK_SECONDS = 1.0
MIN_CHUNK_ITERATIONS = 50
MAX_CHUNK_ITERATIONS = 100_000
#: Upper bound of chunks per job, so a huge job does not create millions of rows.
MAX_CHUNKS_PER_JOB = 20_000
#: A node may spend this many times a chunk's expected time on it before it gives up...
BUDGET_FACTOR = 10.0
#: ... but never less than this (start-up, a busy machine) ...
MIN_BUDGET_SECONDS = 30.0
#: ... nor more than this.
MAX_BUDGET_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Capacity:
    """The part of the pool that may run a job, as measured now.

    Attributes:
        nodes: eligible nodes that are online.
        workers: their summed ``max_parallel``.
        iterations_per_second: summed measured throughput (0 when nothing is measured).
        start: first global iteration to plan (non-zero for a later ``target_error`` round).
        iterations: how many iterations this plan covers.
        worker_events_per_second: engine events per second of one worker, averaged over
            the nodes that have been measured (0 when none has).
    """

    nodes: int
    workers: int
    iterations_per_second: float
    start: int = 0
    iterations: int = 0
    worker_events_per_second: float = 0.0


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """One planned chunk: iterations ``[seed_offset, seed_offset + iterations)``."""

    seed_offset: int
    iterations: int


def _positive(value: float | None) -> float | None:
    """``value`` if it is a finite positive number (nodes report figures), else None."""
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def iteration_rate(
    *,
    events_per_iteration: float | None,
    seconds_per_iteration: float | None,
    worker_events_per_second: float | None = None,
) -> float | None:
    """Iterations per second one worker is expected to run of a config, or None if its
    cost is unknown.

    The slower of two estimates (volunteers first): the workers' measured events per
    second (or ``DEFAULT_WORKER_EVENTS_PER_SECOND``) over the config's events per
    iteration, and one over the seconds per iteration measured at submit.
    """
    events = _positive(events_per_iteration)
    seconds = _positive(seconds_per_iteration)
    estimates: list[float] = []
    if events is not None:
        speed = _positive(worker_events_per_second) or DEFAULT_WORKER_EVENTS_PER_SECOND
        estimates.append(speed / events)
    if seconds is not None:
        estimates.append(1.0 / seconds)
    rate = min(estimates, default=None)
    return rate if rate is not None and math.isfinite(rate) and rate > 0 else None


def max_job_iterations(rate: float) -> int:
    """Most iterations a job of a config run at ``rate`` iterations/s may have: at most
    ``MAX_CHUNKS_PER_JOB`` chunks of about ``TARGET_CHUNK_SECONDS``."""
    return max(1, int(min(MAX_CHUNKS_PER_JOB * rate * TARGET_CHUNK_SECONDS, 2**62)))


def chunk_budget_seconds(iterations: int, rate: float | None) -> float | None:
    """How long a node may run a chunk of ``iterations`` before it stops it as over budget:
    ``BUDGET_FACTOR`` times the expected time, within [``MIN_BUDGET_SECONDS``,
    ``MAX_BUDGET_SECONDS``]; None when the cost is unknown (the node's own cap applies)."""
    rate = _positive(rate)
    if rate is None:
        return None
    expected = max(iterations, 1) / rate
    return round(min(max(BUDGET_FACTOR * expected, MIN_BUDGET_SECONDS), MAX_BUDGET_SECONDS), 1)


def default_chunk_size(
    total: int,
    capacity: Capacity,
    *,
    events_per_iteration: float | None = None,
    seconds_per_iteration: float | None = None,
) -> int:
    """Iterations per chunk: about ``TARGET_CHUNK_SECONDS`` on one worker, bounded.

    With the config's cost known (``events_per_iteration``, ``seconds_per_iteration``),
    the chunk takes about ``TARGET_CHUNK_SECONDS`` whatever the config costs; without it,
    the nodes' measured iteration rate (or ``DEFAULT_WORKER_THROUGHPUT``) is used. With
    several workers, a small job is cut so that every worker gets about two chunks; a job
    never has more than ``MAX_CHUNKS_PER_JOB`` chunks; the result is always between 1 and
    ``total``.
    """
    workers = max(capacity.workers, 1)
    rate = iteration_rate(
        events_per_iteration=events_per_iteration,
        seconds_per_iteration=seconds_per_iteration,
        worker_events_per_second=capacity.worker_events_per_second,
    )
    if rate is not None:
        target = max(1, int(min(rate * TARGET_CHUNK_SECONDS, MAX_CHUNK_ITERATIONS)))
        floor = max(1, int(min(rate * MIN_CHUNK_SECONDS, target)))
        size = max(min(target, -(-total // (2 * workers))), floor, -(-total // MAX_CHUNKS_PER_JOB))
        return max(1, min(size, MAX_CHUNK_ITERATIONS, total))
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
    "BUDGET_FACTOR",
    "DEFAULT_WORKER_EVENTS_PER_SECOND",
    "DEFAULT_WORKER_THROUGHPUT",
    "MAX_BUDGET_SECONDS",
    "MAX_CHUNKS_PER_JOB",
    "MAX_CHUNK_ITERATIONS",
    "MIN_BUDGET_SECONDS",
    "MIN_CHUNK_ITERATIONS",
    "MIN_CHUNK_SECONDS",
    "TARGET_CHUNK_SECONDS",
    "Capacity",
    "ChunkPlan",
    "check_plan",
    "chunk_budget_seconds",
    "default_chunk_size",
    "iteration_rate",
    "max_job_iterations",
    "split_evenly",
    "split_into",
]
