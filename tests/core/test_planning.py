"""Cutting a job into chunks (``wowlab_core.planning``)."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from wowlab_core.planning import (
    DEFAULT_WORKER_EVENTS_PER_SECOND,
    DEFAULT_WORKER_THROUGHPUT,
    MAX_BUDGET_SECONDS,
    MAX_CHUNK_ITERATIONS,
    MAX_CHUNKS_PER_JOB,
    MIN_BUDGET_SECONDS,
    MIN_CHUNK_ITERATIONS,
    TARGET_CHUNK_SECONDS,
    Capacity,
    ChunkPlan,
    check_plan,
    chunk_budget_seconds,
    default_chunk_size,
    iteration_rate,
    max_job_iterations,
    split_evenly,
    split_into,
)

TOTALS = st.integers(min_value=1, max_value=10**10)
WORKERS = st.integers(min_value=-3, max_value=10_000)
THROUGHPUTS = st.one_of(
    st.just(0.0),
    st.floats(min_value=-1e6, max_value=1e12),
    st.sampled_from([math.inf, -math.inf, math.nan, 1e308, 5e-324]),
)


def capacity(workers: int, rate: float, nodes: int = 1) -> Capacity:
    return Capacity(nodes=nodes, workers=workers, iterations_per_second=rate)


# --------------------------------------------------------------------------- chunk size


@settings(max_examples=150)
@given(TOTALS, WORKERS, THROUGHPUTS)
def test_chunk_size_is_always_bounded(total: int, workers: int, rate: float) -> None:
    size = default_chunk_size(total, capacity(workers, rate))
    assert isinstance(size, int)
    assert 1 <= size <= total
    assert size <= MAX_CHUNK_ITERATIONS
    assert size >= min(MIN_CHUNK_ITERATIONS, total)
    if total <= MAX_CHUNKS_PER_JOB * MAX_CHUNK_ITERATIONS:
        assert math.ceil(total / size) <= MAX_CHUNKS_PER_JOB


@pytest.mark.parametrize(
    ("workers", "rate", "expected"),
    [
        (0, 0.0, int(DEFAULT_WORKER_THROUGHPUT * TARGET_CHUNK_SECONDS)),
        (-1, -5.0, int(DEFAULT_WORKER_THROUGHPUT * TARGET_CHUNK_SECONDS)),
        (3, 0.0, int(DEFAULT_WORKER_THROUGHPUT * TARGET_CHUNK_SECONDS)),
        (0, 1000.0, 5000),  # measured rate but no worker count: counted as one worker
    ],
)
def test_no_division_by_zero_without_nodes(workers: int, rate: float, expected: int) -> None:
    # A job nobody can run yet is still planned with the default throughput.
    assert default_chunk_size(10**6, capacity(workers, rate, nodes=0)) == expected


@pytest.mark.parametrize(
    ("total", "workers", "rate", "expected"),
    [
        (10**6, 0, 0.0, 1000),  # nothing measured: 200 it/s x 5 s
        (10**6, 1, 0.0, 1000),
        (10**6, 4, 4000.0, 5000),  # 1000 it/s per worker x 5 s
        (10**6, 1, 10**9, MAX_CHUNK_ITERATIONS),  # capped
        (10**6, 1, 1.0, MIN_CHUNK_ITERATIONS),  # floored
        (1000, 4, 10**6, 125),  # small job: about two chunks per worker
        (10, 1, 0.0, 10),  # never above the job
        (1, 64, 10**6, 1),
        (10**9, 1, 1.0, 50_000),  # at most MAX_CHUNKS_PER_JOB chunks
    ],
)
def test_chunk_size_examples(total: int, workers: int, rate: float, expected: int) -> None:
    assert default_chunk_size(total, capacity(workers, rate)) == expected


@pytest.mark.parametrize("rate", [math.inf, 1e308, math.nan])
def test_absurd_measured_throughput_does_not_crash(rate: float) -> None:
    # A node can report an elapsed time so small that the smoothed rate overflows to inf.
    size = default_chunk_size(10**7, capacity(1, rate))
    expected = MAX_CHUNK_ITERATIONS if rate > 0 else 1000  # NaN: as if unmeasured
    assert size == expected


@given(TOTALS, st.integers(min_value=1, max_value=1000), st.floats(0, 1e9), st.floats(0, 1e9))
def test_faster_pool_never_gets_smaller_chunks(
    total: int, workers: int, slow: float, fast: float
) -> None:
    slow, fast = sorted((slow, fast))
    assume(slow > 0)  # 0 means "unmeasured", not "slow"
    assert default_chunk_size(total, capacity(workers, slow)) <= default_chunk_size(
        total, capacity(workers, fast)
    )


# --------------------------------------------------------------------------- splitting


@settings(max_examples=100)
@given(
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=1, max_value=5000),
    st.integers(min_value=-5, max_value=700),
)
def test_split_evenly_tiles_exactly(start: int, total: int, size: int) -> None:
    plans = split_evenly(start, total, size)
    check_plan(plans, start, total)
    step = max(1, size)
    assert len(plans) == math.ceil(total / step)
    assert all(p.iterations == step for p in plans[:-1])
    assert 1 <= plans[-1].iterations <= step
    assert [p.seed_offset for p in plans] == sorted(p.seed_offset for p in plans)


@settings(max_examples=100)
@given(
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=-5, max_value=3000),
)
def test_split_into_tiles_with_near_equal_chunks(start: int, total: int, chunks: int) -> None:
    plans = split_into(start, total, chunks)
    check_plan(plans, start, total)
    assert len(plans) == max(1, min(chunks, total))
    sizes = [p.iterations for p in plans]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the larger chunks come first


@pytest.mark.parametrize("total", [0, -5])
def test_empty_jobs_split_into_nothing(total: int) -> None:
    assert split_evenly(7, total, 10) == []
    # A zero-iteration chunk is not a chunk: both splitters agree on an empty plan.
    assert split_into(7, total, 3) == []
    check_plan([], 7, 0)


def test_split_examples() -> None:
    assert split_evenly(100, 25, 10) == [ChunkPlan(100, 10), ChunkPlan(110, 10), ChunkPlan(120, 5)]
    assert split_into(0, 10, 3) == [ChunkPlan(0, 4), ChunkPlan(4, 3), ChunkPlan(7, 3)]
    assert split_into(0, 2, 5) == [ChunkPlan(0, 1), ChunkPlan(1, 1)]


# --------------------------------------------------------------------------- checking a plan


@pytest.mark.parametrize(
    ("plans", "message"),
    [
        ([ChunkPlan(0, 5), ChunkPlan(6, 4)], "gap or overlap at iteration 5"),  # gap
        ([ChunkPlan(0, 5), ChunkPlan(4, 6)], "gap or overlap at iteration 5"),  # overlap
        ([ChunkPlan(0, 5), ChunkPlan(5, 0), ChunkPlan(5, 5)], "has 0 iterations"),
        ([ChunkPlan(0, 12), ChunkPlan(12, -2)], "has -2 iterations"),
        ([ChunkPlan(0, 5), ChunkPlan(5, 4)], "cover up to 9, not 10"),  # short
        ([ChunkPlan(0, 5), ChunkPlan(5, 6)], "cover up to 11, not 10"),  # too long
        ([ChunkPlan(1, 10)], "gap or overlap at iteration 0"),  # wrong start
        ([ChunkPlan(0, 5), ChunkPlan(0, 5)], "gap or overlap"),  # duplicate
        ([], "cover up to 0, not 10"),
    ],
)
def test_check_plan_detects_bad_plans(plans: list[ChunkPlan], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_plan(plans, 0, 10)


def test_check_plan_accepts_any_order_and_tuples() -> None:
    check_plan((ChunkPlan(15, 5), ChunkPlan(10, 5)), 10, 10)


@settings(max_examples=150)
@given(
    st.integers(min_value=1, max_value=10**5),
    st.integers(min_value=1, max_value=500),
    st.data(),
)
def test_check_plan_catches_any_single_change(total: int, chunks: int, data: st.DataObject) -> None:
    plans = split_into(0, total, chunks)
    i = data.draw(st.integers(min_value=0, max_value=len(plans) - 1))
    delta = data.draw(st.sampled_from([-1, 1]))
    field = data.draw(st.sampled_from(["seed_offset", "iterations"]))
    p = plans[i]
    if field == "seed_offset":
        plans[i] = ChunkPlan(p.seed_offset + delta, p.iterations)
    else:
        plans[i] = ChunkPlan(p.seed_offset, p.iterations + delta)
    with pytest.raises(ValueError):
        check_plan(plans, 0, total)


# --------------------------------------------------------------------------- by cost

# Figures of a real pair (benchmarks/README.md, tests/engine/slow_aoe.json): fire_mage
# ~660 events and ~0.1 ms per iteration; slow_aoe ~420,000 events and ~0.14 s.
FIRE_MAGE = {"events_per_iteration": 660.0, "seconds_per_iteration": 0.0001}
SLOW_AOE = {"events_per_iteration": 420_000.0, "seconds_per_iteration": 0.14}


def test_a_pool_measured_on_a_cheap_config_does_not_size_an_expensive_one_by_it() -> None:
    # The review's case: nodes measured ~8,000 it/s on fire_mage; before, an expensive
    # config got 40,000-iteration chunks (~1.5 hours each).
    pool = Capacity(nodes=1, workers=1, iterations_per_second=8000.0)
    size = default_chunk_size(100_000, pool, **SLOW_AOE)
    assert size * SLOW_AOE["seconds_per_iteration"] <= TARGET_CHUNK_SECONDS
    assert size >= 30  # and still about 5 s of work, not a handful of iterations
    cheap = default_chunk_size(10**6, pool, **FIRE_MAGE)
    assert cheap * FIRE_MAGE["seconds_per_iteration"] <= TARGET_CHUNK_SECONDS * 1.01


@settings(max_examples=200)
@given(
    st.integers(min_value=1, max_value=10**8),
    st.integers(min_value=1, max_value=256),
    st.floats(min_value=1.0, max_value=2e6),
    st.floats(min_value=1e-6, max_value=5.0),
    st.one_of(st.just(0.0), st.floats(min_value=1e3, max_value=1e9)),
)
def test_known_cost_chunks_take_about_the_target_time(
    total: int, workers: int, events: float, seconds: float, node_speed: float
) -> None:
    pool = Capacity(
        nodes=1, workers=workers, iterations_per_second=0.0, worker_events_per_second=node_speed
    )
    size = default_chunk_size(
        total, pool, events_per_iteration=events, seconds_per_iteration=seconds
    )
    rate = iteration_rate(
        events_per_iteration=events,
        seconds_per_iteration=seconds,
        worker_events_per_second=node_speed,
    )
    assert rate is not None and 1 <= size <= total
    # At most ~5 s of work on a worker (or one iteration), unless the chunk-count bound
    # forces bigger chunks (submit refuses such jobs, see max_job_iterations).
    if total <= max_job_iterations(rate):
        assert size <= max(1, rate * TARGET_CHUNK_SECONDS) + 1
    assert math.ceil(total / size) <= MAX_CHUNKS_PER_JOB


@pytest.mark.parametrize(
    ("events", "seconds", "node_speed", "expected"),
    [
        (1000.0, None, 0.0, DEFAULT_WORKER_EVENTS_PER_SECOND / 1000),
        (1000.0, None, 2e6, 2000.0),
        (None, 0.5, 0.0, 2.0),
        (1000.0, 0.01, 1e9, 100.0),  # the slower estimate wins (a node cannot claim more)
        (None, None, 1e9, None),
        (math.nan, math.inf, math.nan, None),
        (-5.0, 0.0, -1.0, None),
    ],
)
def test_iteration_rate(
    events: float | None, seconds: float | None, node_speed: float, expected: float | None
) -> None:
    assert (
        iteration_rate(
            events_per_iteration=events,
            seconds_per_iteration=seconds,
            worker_events_per_second=node_speed,
        )
        == expected
    )


@pytest.mark.parametrize(
    ("iterations", "rate", "expected"),
    [
        (35, 7.0, MIN_BUDGET_SECONDS),  # 5 s expected: 50 s
        (100, 1.0, MAX_BUDGET_SECONDS),  # 100 s expected: capped
        (700, 100.0, 70.0),  # 7 s expected x 10
        (10, None, None),  # cost unknown: the node's own cap applies
        (10, math.nan, None),
    ],
)
def test_chunk_budget(iterations: int, rate: float | None, expected: float | None) -> None:
    budget = chunk_budget_seconds(iterations, rate)
    if expected == MIN_BUDGET_SECONDS:
        assert budget is not None and MIN_BUDGET_SECONDS <= budget <= 50.0
    else:
        assert budget == expected
