"""A config's cost per iteration, measured at submit: stored, reused, and limits enforced."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from wowlab_core.cost import (
    DEFAULT_MAX_SECONDS_PER_ITERATION,
    IterationCost,
    check_cost,
    measure_cost,
)
from wowlab_core.db import read_session, write_session
from wowlab_core.errors import ConfigTooExpensive, InvalidRequest
from wowlab_core.hookspecs import hookimpl
from wowlab_core.jobs import JobLimits, submit_job
from wowlab_core.models import SimChunk, SimConfig, SimJob
from wowlab_core.planning import TARGET_CHUNK_SECONDS
from wowlab_core.plugins import Hooks
from wowlab_core.testing.toy_engine import ToyEngine

from .helpers import make_job, make_node, make_user

SLOW_TOY = {"base_dps": 1000, "spread": 100, "iteration_ms": 20}


class CountingToy(ToyEngine):
    """The toy engine under another name, counting its runs."""

    name = "counting"
    runs = 0

    def run_chunk(self, *args: Any, **kwargs: Any) -> Any:
        CountingToy.runs += 1
        return super().run_chunk(*args, **kwargs)


class LegacyToy(ToyEngine):
    """A toy engine written before stop/progress existed."""

    name = "legacy"

    def run_chunk(  # type: ignore[override]
        self, prepared: dict[str, int], *, seed: int, seed_offset: int, iterations: int
    ) -> Any:
        return super().run_chunk(
            prepared, seed=seed, seed_offset=seed_offset, iterations=iterations
        )


class LocalOnlyToy(ToyEngine):
    """A toy engine that may run only on the submitter's machine (like ``reference``)."""

    name = "toy-local"
    local_only = True


class extra_engines:
    @staticmethod
    @hookimpl
    def wowlab_register_engines(register: Any) -> None:
        register(CountingToy())
        register(LegacyToy())
        register(LocalOnlyToy())


@pytest.fixture
def hooks(wowlab_hooks: Hooks, register_plugin: Any) -> Hooks:
    register_plugin(extra_engines)
    return wowlab_hooks


# --------------------------------------------------------------------------- measuring


def test_measuring_a_slow_config_takes_a_fraction_of_a_second_and_finds_its_cost() -> None:
    engine = ToyEngine()
    started = time.monotonic()
    cost = measure_cost(engine, engine.prepare(SLOW_TOY))
    took = time.monotonic() - started
    assert 0.02 <= cost.seconds <= 0.06  # 20 ms per iteration, loaded machine allowed for
    assert cost.events == 10  # the toy's events metric
    assert took < 0.5 and cost.iterations >= 3


def test_a_first_iteration_past_the_limit_is_stopped_and_refused() -> None:
    engine = ToyEngine()
    started = time.monotonic()
    with pytest.raises(ConfigTooExpensive, match=r"more than 0\.5 s .* limit is 0\.5 s"):
        measure_cost(engine, engine.prepare({"iteration_ms": 60_000}))
    assert time.monotonic() - started < 1.5  # not the 60 s the iteration would take


def test_an_engine_without_stop_support_is_measured_in_growing_runs() -> None:
    engine = LegacyToy()
    cost = measure_cost(engine, engine.prepare(SLOW_TOY))
    assert 0.02 <= cost.seconds <= 0.06 and cost.events == 10


def test_a_chunk_stall_is_not_an_iteration_cost() -> None:
    # The toy's sleep_ms stalls a chunk once; the measurement stops it there.
    engine = ToyEngine()
    started = time.monotonic()
    cost = measure_cost(engine, engine.prepare({"sleep_ms": 20_000}))
    assert cost.seconds < 0.001 and time.monotonic() - started < 0.5


def test_check_cost_names_the_cost_and_the_limit() -> None:
    check_cost(IterationCost(seconds=0.4, events=None, iterations=3), limit_seconds=0.5)
    with pytest.raises(ConfigTooExpensive) as refused:
        check_cost(IterationCost(seconds=1.25, events=419_000, iterations=1), limit_seconds=0.5)
    assert refused.value.field == "config"
    assert "one iteration takes about 1.25 s (419,000 engine events)" in refused.value.message
    assert "the limit is 0.5 s per iteration" in refused.value.message


# --------------------------------------------------------------------------- submitting


def test_submit_stores_the_cost_and_sizes_chunks_by_it(sqlite_db: Engine, hooks: Hooks) -> None:
    owner = make_user(sqlite_db, "owner")
    make_node(sqlite_db, owner, max_parallel=1)
    job_id = make_job(sqlite_db, owner, hooks, iterations=2000, chunks=None, config=SLOW_TOY)
    with read_session(sqlite_db) as s:
        job = s.get(SimJob, job_id)
        config = s.get(SimConfig, job.config_hash if job else "")
        chunks = s.exec(select(SimChunk).where(SimChunk.job_id == job_id)).all()
    assert job is not None and config is not None
    assert job.seconds_per_iteration is not None and 0.02 <= job.seconds_per_iteration <= 0.06
    assert job.events_per_iteration == 10
    assert config.seconds_per_iteration == job.seconds_per_iteration
    # ~5 s of 20 ms iterations per chunk: about 250, never the old default of 1,000.
    assert max(c.iterations for c in chunks) * 0.02 <= TARGET_CHUNK_SECONDS
    assert max(c.iterations for c in chunks) >= 0.3 * TARGET_CHUNK_SECONDS / 0.06


def test_a_second_submit_of_a_config_reuses_its_cost(sqlite_db: Engine, hooks: Hooks) -> None:
    owner = make_user(sqlite_db, "owner")
    CountingToy.runs = 0
    first = make_job(sqlite_db, owner, hooks, iterations=100, engine_name="counting")
    runs = CountingToy.runs
    assert runs >= 1
    second = make_job(sqlite_db, owner, hooks, iterations=100, engine_name="counting", seed=2)
    assert CountingToy.runs == runs  # not measured again
    with read_session(sqlite_db) as s:
        a, b = s.get(SimJob, first), s.get(SimJob, second)
        assert a is not None and b is not None
        assert a.seconds_per_iteration == b.seconds_per_iteration is not None


def test_a_too_expensive_config_is_refused_and_nothing_is_written(
    sqlite_db: Engine, hooks: Hooks
) -> None:
    owner = make_user(sqlite_db, "owner")
    with pytest.raises(ConfigTooExpensive, match=r"one iteration takes about 0\.\d+ s"):
        make_job(
            sqlite_db,
            owner,
            hooks,
            config={"iteration_ms": 150},
            engine_name="legacy",  # cannot be stopped: its first iteration is measured whole
            limits=JobLimits(max_seconds_per_iteration=0.1),
        )
    with read_session(sqlite_db) as s:
        assert s.exec(select(SimJob)).all() == [] and s.exec(select(SimConfig)).all() == []


def test_too_many_iterations_of_an_expensive_config_are_refused(
    sqlite_db: Engine, hooks: Hooks
) -> None:
    owner = make_user(sqlite_db, "owner")
    # 20 ms per iteration: 20,000 chunks of 5 s hold 5 million iterations at most.
    with pytest.raises(InvalidRequest, match="may have at most") as refused:
        make_job(sqlite_db, owner, hooks, iterations=9_000_000, chunks=None, config=SLOW_TOY)
    assert refused.value.field == "iterations"


def test_a_local_only_engine_is_refused_for_the_pool_but_runs_locally(
    sqlite_db: Engine, hooks: Hooks
) -> None:
    owner = make_user(sqlite_db, "owner")
    with pytest.raises(InvalidRequest, match="runs only on your own machine") as refused:
        make_job(sqlite_db, owner, hooks, engine_name="toy-local")
    assert refused.value.field == "engine"
    with write_session(sqlite_db) as s:
        job = submit_job(
            s,
            user=owner,
            config={"iteration_ms": 900},  # too expensive for the pool, fine locally
            iterations=10,
            engine_name="toy-local",
            hooks=hooks,
            local=True,
        )
        assert job.seconds_per_iteration is not None
        assert job.seconds_per_iteration > DEFAULT_MAX_SECONDS_PER_ITERATION


def test_a_config_the_engine_fails_on_is_still_submitted_without_a_cost(
    sqlite_db: Engine, hooks: Hooks
) -> None:
    # The nodes report the engine's error as usual; the submit does not guess.
    owner = make_user(sqlite_db, "owner")
    job_id = make_job(sqlite_db, owner, hooks, config={"fail": 1})
    with read_session(sqlite_db) as s:
        job = s.get(SimJob, job_id)
        assert job is not None and job.seconds_per_iteration is None
