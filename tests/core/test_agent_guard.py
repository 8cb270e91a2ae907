"""The node agent protects its machine: cancel and hand-back stop a running chunk within a
second, a chunk past its budget is stopped and reported over budget (the job still
completes), the memory cap stops chunks, and progress is visible while a chunk runs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from typing import Any

import anyio
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from wowlab_core.agent import AgentOptions, NodeAgent
from wowlab_core.cache import CacheSettings, MemoryDiskCache
from wowlab_core.chunk_guard import process_rss_bytes
from wowlab_core.coordinator import Coordinator, CoordinatorSettings
from wowlab_core.db import read_session, write_session
from wowlab_core.hookspecs import hookimpl
from wowlab_core.jobs import JobLimits, submit_job
from wowlab_core.localpool import run_local_simulation
from wowlab_core.models import ChunkStatus, JobStatus, SimChunk, SimJob, User
from wowlab_core.nodes import claim_and_announce
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import NodeInfo
from wowlab_core.report import dumps_report
from wowlab_core.scheduler import cancel_job
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_core.testing.toy_engine import ToyEngine
from wowlab_core.transport_local import LocalTransport

from .helpers import make_job, make_user

pytestmark = pytest.mark.anyio

#: 20 ms per iteration, stoppable between (and within) iterations.
SLOW = {"base_dps": 1500, "spread": 400, "iteration_ms": 20}


class ProbeToy(ToyEngine):
    """The toy engine under its own name, recording when each run ends."""

    name = "probe"
    #: Shared on purpose: the agent makes its own instances.
    ended: list[float] = []

    def run_chunk(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().run_chunk(*args, **kwargs)
        finally:
            ProbeToy.ended.append(time.monotonic())


class LegacyToy(ToyEngine):
    """A toy engine written before stop/progress existed: it cannot be stopped."""

    name = "legacy"

    def run_chunk(  # type: ignore[override]
        self, prepared: dict[str, int], *, seed: int, seed_offset: int, iterations: int
    ) -> Any:
        return super().run_chunk(
            prepared, seed=seed, seed_offset=seed_offset, iterations=iterations
        )


class LocalOnlyToy(ToyEngine):
    name = "toy-local"
    local_only = True


class test_engines:
    @staticmethod
    @hookimpl
    def wowlab_register_engines(register: Any) -> None:
        register(ProbeToy())
        register(LegacyToy())
        register(LocalOnlyToy())


@pytest.fixture
def hooks(wowlab_hooks: Hooks, register_plugin: Any) -> Hooks:
    register_plugin(test_engines)
    ProbeToy.ended.clear()
    return wowlab_hooks


@asynccontextmanager
async def running_agent(
    db: Engine,
    hooks: Hooks,
    owner: User,
    tmp_path: Any,
    settings: CoordinatorSettings = TEST_SETTINGS,
    **options: Any,
) -> AsyncIterator[tuple[NodeAgent, list[tuple[float, str, dict[str, Any]]]]]:
    """A claimed agent on the local transport, running until the block ends."""
    events: list[tuple[float, str, dict[str, Any]]] = []

    def claim(status: Any) -> None:
        claim_and_announce(db, user_id=owner.id or 0, code=status.claim_code)

    agent = NodeAgent(
        LocalTransport(Coordinator(db, hooks=hooks, settings=settings)),
        info=NodeInfo(name="volunteer", max_parallel=1),
        hooks=hooks,
        cache=MemoryDiskCache(CacheSettings(directory=tmp_path)),
        options=AgentOptions(
            **{
                "heartbeat_seconds": 0.2,
                "idle_wait_seconds": 0.1,
                "claim_wait_seconds": 0.2,
                **options,
            }
        ),
        on_claim_code=claim,
        on_event=lambda event, data: events.append((time.monotonic(), event, data)),
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(agent.run)
        yield agent, events
        agent.stop(hand_back=True)


async def _until(check: Callable[[], Any], timeout: float = 20) -> Any:
    with anyio.fail_after(timeout):
        while not (value := check()):
            await anyio.sleep(0.02)
        return value


def _completed(db: Engine, job_id: int) -> bool:
    return _job(db, job_id).status == JobStatus.COMPLETED.value


def _job(db: Engine, job_id: int) -> SimJob:
    with read_session(db) as s:
        job = s.get(SimJob, job_id)
        assert job is not None
        return job


def _chunks(db: Engine, job_id: int) -> list[SimChunk]:
    with read_session(db) as s:
        return list(s.exec(select(SimChunk).where(SimChunk.job_id == job_id)).all())


async def test_cancel_stops_the_running_chunk_within_a_second(
    sqlite_db: Engine, hooks: Hooks, tmp_path: Any
) -> None:
    owner = make_user(sqlite_db, "owner")
    async with running_agent(sqlite_db, hooks, owner, tmp_path) as (agent, events):
        # 2,000 iterations of 20 ms: 40 s if nothing stopped it.
        job_id = make_job(sqlite_db, owner, hooks, iterations=2000, chunks=1, config=SLOW)
        await _until(lambda: any(done >= 5 for done in agent.progress.values()))
        [chunk_id] = list(agent.progress)
        with write_session(sqlite_db) as s:
            job = s.get(SimJob, job_id)
            assert job is not None
            cancel_job(s, job=job)
            s.commit()
        cancelled_at = time.monotonic()
        ended = await _until(lambda: [t for t, e, _ in events if e == "chunk-cancelled"])
        # The heartbeat (every 0.2 s here) brings the news, then the engine stops.
        latency = ended[0] - cancelled_at
        assert latency < TEST_SETTINGS.heartbeat_seconds + 1.0, latency
        assert chunk_id not in agent.progress and agent.stats.chunks_failed == 0


async def test_hand_back_stops_the_running_chunk_within_a_second(
    sqlite_db: Engine, hooks: Hooks, tmp_path: Any
) -> None:
    owner = make_user(sqlite_db, "owner")
    async with running_agent(sqlite_db, hooks, owner, tmp_path) as (agent, _):
        job_id = make_job(
            sqlite_db, owner, hooks, iterations=2000, chunks=1, config=SLOW, engine_name="probe"
        )
        await _until(lambda: any(done >= 5 for done in agent.progress.values()))
        asked = time.monotonic()
        agent.stop(hand_back=True)
        await _until(lambda: ProbeToy.ended, timeout=5)
    assert ProbeToy.ended[0] - asked < 1.0
    [chunk] = _chunks(sqlite_db, job_id)
    assert chunk.status == ChunkStatus.PENDING.value and chunk.attempts == 0
    assert chunk.failures == 0


async def test_a_chunk_over_budget_is_stopped_and_the_job_still_completes(
    sqlite_db: Engine, hooks: Hooks, tmp_path: Any
) -> None:
    owner = make_user(sqlite_db, "owner")
    config = {"base_dps": 1500, "spread": 400, "iteration_ms": 10}
    # The owner lets a chunk run 1 s; one chunk of 400 iterations takes ~4 s.
    async with running_agent(sqlite_db, hooks, owner, tmp_path, max_chunk_seconds=1.0) as (
        agent,
        events,
    ):
        job_id = make_job(sqlite_db, owner, hooks, iterations=400, chunks=1, seed=11, config=config)
        await _until(lambda: _job(sqlite_db, job_id).status == JobStatus.COMPLETED.value, 60)
    over = [data for _, e, data in events if e == "chunk-over-budget"]
    assert over and agent.stats.chunks_over_budget == len(over) and agent.stats.chunks_failed == 0
    assert over[0]["budget"] == 1.0 and 0 < over[0]["iterations_done"] < 400
    chunks = _chunks(sqlite_db, job_id)
    assert len(chunks) > 1 and all(c.failures == 0 for c in chunks)
    assert sum(c.iterations for c in chunks) == 400
    assert max(c.iterations for c in chunks) <= 200
    # The report is the one of an undisturbed run.
    undisturbed = await anyio.to_thread.run_sync(
        lambda: run_local_simulation(
            config | {"iteration_ms": 0}, hooks=hooks, iterations=400, seed=11, engine_name="toy"
        )
    )
    report, expected = dict(_job(sqlite_db, job_id).result), dict(undisturbed.report or {})
    assert report.pop("config_hash") != expected.pop("config_hash")
    assert dumps_report(report) == dumps_report(expected)


async def test_the_memory_cap_stops_a_chunk_and_says_why(
    sqlite_db: Engine, hooks: Hooks, tmp_path: Any
) -> None:
    owner = make_user(sqlite_db, "owner")
    rss = process_rss_bytes()
    assert rss is not None
    cap_mb = rss / 2**20 + 150
    config = {"iteration_ms": 20, "alloc_mb": 400}  # 400 MiB held while it runs
    # Writing 400 MiB holds the GIL a while: leases longer than 1 s, so none runs out.
    settings = replace(TEST_SETTINGS, lease_seconds=30.0)
    async with running_agent(sqlite_db, hooks, owner, tmp_path, settings, memory_cap_mb=cap_mb) as (
        _,
        events,
    ):
        # Writing 400 MiB takes a while: the submit must not count it as iteration cost.
        limits = JobLimits(max_seconds_per_iteration=10.0)
        job_id = make_job(
            sqlite_db, owner, hooks, iterations=1000, chunks=1, config=config, limits=limits
        )
        failed = await _until(lambda: [d for _, e, d in events if e == "chunk-failed"])
        [chunk] = await _until(
            lambda: [c for c in _chunks(sqlite_db, job_id) if c.failures >= 1]
        )  # reported
    assert "memory cap exceeded" in failed[0]["error"]
    assert f"its cap is {cap_mb:,.0f} MiB" in failed[0]["error"]
    assert "memory cap exceeded" in (chunk.error or "")


async def test_progress_is_visible_while_a_chunk_runs(
    sqlite_db: Engine, hooks: Hooks, tmp_path: Any
) -> None:
    owner = make_user(sqlite_db, "owner")
    async with running_agent(sqlite_db, hooks, owner, tmp_path) as (agent, _):
        make_job(sqlite_db, owner, hooks, iterations=100, chunks=1, config=SLOW)
        first = await _until(lambda: max(agent.progress.values(), default=0))
        await anyio.sleep(0.3)
        later = max(agent.progress.values(), default=0)
        assert 0 < first < later < 100


async def test_progress_of_a_long_chunk_reaches_the_portal_between_heartbeats(
    sqlite_db: Engine, hooks: Hooks, tmp_path: Any
) -> None:
    """Heartbeats every 30 s, a 2 s chunk: its progress still arrives within it, every
    ``progress_seconds``; with that off, not before the chunk ends."""
    owner = make_user(sqlite_db, "owner")
    rare = replace(TEST_SETTINGS, heartbeat_seconds=30.0, lease_seconds=60.0)

    def stored_progress(job_id: int) -> tuple[str, int]:
        with read_session(sqlite_db) as s:
            chunk = s.exec(select(SimChunk).where(SimChunk.job_id == job_id)).one()
            return chunk.status, chunk.progress

    def progress_seen(job_id: int) -> tuple[str, int] | None:
        found = stored_progress(job_id)
        return found if found[1] > 0 else None

    for progress_seconds, expect_progress in ((0.3, True), (0.0, False)):
        async with running_agent(
            sqlite_db,
            hooks,
            owner,
            tmp_path,
            rare,
            heartbeat_seconds=30.0,
            progress_seconds=progress_seconds,
        ) as (agent, _):
            job_id = make_job(sqlite_db, owner, hooks, iterations=100, chunks=1, config=SLOW)
            await _until(lambda: agent.progress)
            if expect_progress:  # stored while the chunk still runs (a loaded machine is slow)
                status, progress = await _until(partial(progress_seen, job_id), timeout=5)
                assert status == ChunkStatus.LEASED.value and progress < 100, progress
            else:
                await anyio.sleep(1.0)  # about half of the chunk
                status, progress = stored_progress(job_id)
                assert status == ChunkStatus.LEASED.value
                assert progress == 0
            await _until(partial(_completed, sqlite_db, job_id))


async def test_an_engine_that_cannot_stop_is_abandoned_on_cancel(
    sqlite_db: Engine, hooks: Hooks, tmp_path: Any
) -> None:
    owner = make_user(sqlite_db, "owner")
    async with running_agent(sqlite_db, hooks, owner, tmp_path) as (agent, events):
        job_id = make_job(
            sqlite_db, owner, hooks, iterations=150, chunks=1, config=SLOW, engine_name="legacy"
        )
        await _until(lambda: agent.stats.busy_workers == 1)
        await anyio.sleep(0.2)
        with write_session(sqlite_db) as s:
            cancel_job(s, job=s.get(SimJob, job_id))  # type: ignore[arg-type]
            s.commit()
        cancelled_at = time.monotonic()
        ended = await _until(lambda: [t for t, e, _ in events if e == "chunk-cancelled"])
        # Its thread runs on (~3 s in all), but the node is free again at once.
        assert ended[0] - cancelled_at < TEST_SETTINGS.heartbeat_seconds + 1.0
        assert agent.stats.busy_workers == 0


async def test_a_local_only_engine_is_not_run_for_the_pool(
    sqlite_db: Engine, hooks: Hooks, tmp_path: Any
) -> None:
    owner = make_user(sqlite_db, "owner")
    with write_session(sqlite_db) as s:  # only a local pool may submit it
        job = submit_job(
            s,
            user=owner,
            config={},
            iterations=10,
            engine_name="toy-local",
            hooks=hooks,
            local=True,
        )
        s.commit()
    async with running_agent(sqlite_db, hooks, owner, tmp_path) as (agent, events):
        # A pool node does not advertise a local-only engine, so it never leases its chunks.
        assert "toy-local" not in (agent.info.engines or {})
        await _until(lambda: agent.stats.state in ("idle", "working"))
        await anyio.sleep(1.0)
    assert not [e for _, e, _ in events if e.startswith("chunk-")]
    assert _job(sqlite_db, job.id or 0).status == JobStatus.PENDING.value


@pytest.mark.anyio
async def test_a_cancel_reaches_a_busy_node_before_its_next_heartbeat(
    sqlite_db: Engine, hooks: Hooks, tmp_path: Any
) -> None:
    """Heartbeats every 15 s, yet the chunk stops within a second of the cancel: the
    coordinator wakes busy nodes, which ask at once which chunks to stop."""
    owner = make_user(sqlite_db, "owner")
    job_id = make_job(
        sqlite_db, owner, hooks, iterations=100, chunks=1, config={"iteration_ms": 300}
    )
    settings = replace(TEST_SETTINGS, lease_seconds=60.0, heartbeat_seconds=15.0)
    async with running_agent(sqlite_db, hooks, owner, tmp_path, settings) as (agent, events):
        agent.options.heartbeat_seconds = 15.0
        await _until(lambda: agent.progress.get(next(iter(agent.progress), -1), 0) >= 1)
        with write_session(sqlite_db) as s:
            cancel_job(s, job=s.get(SimJob, job_id))  # type: ignore[arg-type]
            s.commit()
        agent.transport.coordinator.notify_work()  # type: ignore[attr-defined]
        cancelled_at = time.monotonic()
        ended = await _until(lambda: [t for t, e, _ in events if e == "chunk-cancelled"], 5)
        assert ended[0] - cancelled_at < 1.0, ended[0] - cancelled_at
