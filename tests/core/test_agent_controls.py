"""What a desktop app asks of the node agent: pause (leases handed back, none taken while
paused) and resume, a local worker limit, live per-chunk progress, the owner and sharing
from the coordinator, and backing off while the coordinator is unreachable."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from wowlab_core.access import grant_access, sharing_summary
from wowlab_core.agent import AgentOptions, NodeAgent, config_name
from wowlab_core.cache import CacheSettings, MemoryDiskCache
from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session, write_session
from wowlab_core.errors import RateLimited, TransportError
from wowlab_core.hookspecs import hookimpl
from wowlab_core.models import (
    AccessType,
    ChunkStatus,
    JobStatus,
    Node,
    SimChunk,
    SimJob,
    User,
)
from wowlab_core.nodes import claim_and_announce
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import NodeInfo, Registration
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_core.testing.toy_engine import ToyEngine
from wowlab_core.transport_local import LocalTransport

from .helpers import make_job, make_user

pytestmark = pytest.mark.anyio

#: 20 ms per iteration: a chunk of 100 runs about 2 s, stoppable between iterations.
SLOW = {"name": "slow toy", "base_dps": 1500, "spread": 400, "iteration_ms": 20}


class LabelledToy(ToyEngine):
    """The toy engine under its own name, taking a ``name`` label as real configs do."""

    name = "labelled"

    def prepare(self, config: Any) -> dict[str, int]:
        if isinstance(config, dict):
            config = {k: v for k, v in config.items() if k != "name"}
        return super().prepare(config)


class labelled_engine:
    @staticmethod
    @hookimpl
    def wowlab_register_engines(register: Any) -> None:
        register(LabelledToy())


@pytest.fixture
def hooks(wowlab_hooks: Hooks, register_plugin: Any) -> Hooks:
    register_plugin(labelled_engine)
    return wowlab_hooks


@asynccontextmanager
async def claimed_agent(
    db: Engine, hooks: Hooks, owner: User, tmp_path: Any, *, max_parallel: int = 2
) -> AsyncIterator[NodeAgent]:
    def claim(status: Any) -> None:
        claim_and_announce(db, user_id=owner.id or 0, code=status.claim_code)

    agent = NodeAgent(
        LocalTransport(Coordinator(db, hooks=hooks, settings=TEST_SETTINGS)),
        info=NodeInfo(name="desk", max_parallel=max_parallel),
        hooks=hooks,
        cache=MemoryDiskCache(CacheSettings(directory=tmp_path)),
        options=AgentOptions(heartbeat_seconds=0.2, idle_wait_seconds=0.1, claim_wait_seconds=0.2),
        on_claim_code=claim,
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(agent.run)
        yield agent
        agent.stop(hand_back=True)


async def _until(check: Callable[[], Any], timeout: float = 20) -> Any:
    with anyio.fail_after(timeout):
        while not (value := check()):
            await anyio.sleep(0.02)
        return value


def _chunks(db: Engine, job_id: int) -> list[SimChunk]:
    with read_session(db) as s:
        return list(s.exec(select(SimChunk).where(SimChunk.job_id == job_id)).all())


def _leases_held(db: Engine) -> int:
    with read_session(db) as s:
        leased = select(SimChunk).where(SimChunk.status == ChunkStatus.LEASED.value)
        return len(s.exec(leased).all())


async def test_pause_hands_leases_back_takes_none_and_resume_carries_on(
    sqlite_db: Engine, hooks: Hooks, tmp_path: Any
) -> None:
    owner = make_user(sqlite_db, "owner")
    async with claimed_agent(sqlite_db, hooks, owner, tmp_path) as agent:
        job_id = make_job(
            sqlite_db, owner, hooks, iterations=600, chunks=6, seed=5, config=SLOW,
            engine_name="labelled",
        )  # fmt: skip
        await _until(lambda: len(agent.progress) == 2 and min(agent.progress.values()) > 2)
        chunks = agent.running_chunks()
        assert [c.job_id for c in chunks] == [job_id, job_id]
        assert {c.config_name for c in chunks} == {"slow toy"}
        assert all(c.iterations == 100 and 0 < c.fraction < 1 for c in chunks)

        agent.pause()
        assert agent.paused
        await _until(lambda: not agent.progress and agent.stats.busy_workers == 0, 5)
        # Every lease went back at once (not at its expiry), and none is taken while paused,
        # for several heartbeats and idle rounds.
        for _ in range(15):
            await anyio.sleep(0.1)
            assert agent.stats.state == "paused" and not agent.running_chunks()
            assert _leases_held(sqlite_db) == 0
            assert {c.status for c in _chunks(sqlite_db, job_id)} <= {
                ChunkStatus.PENDING.value,
                ChunkStatus.COMPLETED.value,
            }
        assert agent.stats.chunks_failed == 0

        agent.resume()
        await _until(lambda: agent.stats.state == "working", 5)

        def done() -> bool:
            with read_session(sqlite_db) as s:
                job = s.get(SimJob, job_id)
                return job is not None and job.status == JobStatus.COMPLETED.value

        await _until(done, 60)
    assert all(c.failures == 0 for c in _chunks(sqlite_db, job_id))


async def test_the_worker_limit_caps_the_workers_below_max_parallel(
    sqlite_db: Engine, hooks: Hooks, tmp_path: Any
) -> None:
    owner = make_user(sqlite_db, "owner")
    async with claimed_agent(sqlite_db, hooks, owner, tmp_path, max_parallel=3) as agent:
        await _until(lambda: agent.stats.state == "idle")
        agent.set_worker_limit(1)
        assert agent.capacity == 1 and agent.stats.max_workers == 1
        make_job(
            sqlite_db, owner, hooks, iterations=300, chunks=6, config=SLOW, engine_name="labelled"
        )
        await _until(lambda: agent.progress)
        for _ in range(10):  # the coordinator would give 3; the node takes 1
            await anyio.sleep(0.05)
            assert len(agent.running_chunks()) <= 1 and _leases_held(sqlite_db) <= 1
        agent.set_worker_limit(None)
        assert agent.capacity == 3
        await _until(lambda: len(agent.progress) == 3, 10)
        with pytest.raises(ValueError):
            agent.set_worker_limit(0)


async def test_owner_and_sharing_come_from_the_coordinator_and_follow_changes(
    sqlite_db: Engine, wowlab_hooks: Hooks, tmp_path: Any
) -> None:
    owner = make_user(sqlite_db, "ana")
    async with claimed_agent(sqlite_db, wowlab_hooks, owner, tmp_path) as agent:
        await _until(lambda: agent.stats.owner == "ana")
        assert agent.stats.sharing == "owner only"
        with write_session(sqlite_db) as s:
            node = s.exec(select(Node)).one()
            grant_access(s, node=node, access_type=AccessType.FRIENDS)
            s.commit()
        await _until(lambda: agent.stats.sharing == "friends", 5)  # told by a heartbeat


def test_sharing_summary_names_the_grants() -> None:
    def grants(*types: str) -> list[str]:
        return list(types)

    assert sharing_summary(grants()) == "owner only"
    assert sharing_summary(grants("owner")) == "owner only"
    assert sharing_summary(grants("friends", "guild", "user", "user")) == (
        "friends, 1 guild, 2 chosen users"
    )
    assert sharing_summary(grants("guild", "guild")) == "2 guilds"
    assert sharing_summary(grants("friends", "public")) == "everyone"


def test_config_name_reads_the_config_or_its_base() -> None:
    assert config_name({"name": "fire_mage"}) == "fire_mage"
    assert config_name({"base": {"name": "rogue"}, "variants": []}) == "rogue"
    assert config_name({"base_dps": 1}) is None and config_name([1]) is None


class Registering(LocalTransport):
    """The local transport, noting when each registration was tried."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tries: list[float] = []

    async def register(self, info: NodeInfo) -> Registration:
        self.tries.append(time.monotonic())
        return await super().register(info)


class Unreachable(Registering):
    """A coordinator that cannot be reached: every registration fails."""

    async def register(self, info: NodeInfo) -> Registration:
        self.tries.append(time.monotonic())
        raise TransportError("cannot reach the portal: connection refused")


def registering_agent(
    transport_class: type[Registering], db: Engine, hooks: Hooks, tmp_path: Any
) -> tuple[NodeAgent, Registering]:
    """A node agent on ``transport_class`` that retries quickly."""
    transport = transport_class(Coordinator(db, hooks=hooks, settings=TEST_SETTINGS))
    agent = NodeAgent(
        transport,
        info=NodeInfo(name="n"),
        hooks=hooks,
        cache=MemoryDiskCache(CacheSettings(directory=tmp_path)),
        options=AgentOptions(retry_seconds=0.05, max_retry_seconds=0.4),
    )
    return agent, transport


async def test_an_unreachable_coordinator_is_retried_with_growing_pauses(
    sqlite_db: Engine, wowlab_hooks: Hooks, tmp_path: Any
) -> None:
    agent, transport = registering_agent(Unreachable, sqlite_db, wowlab_hooks, tmp_path)
    ended: list[BaseException] = []

    async def run() -> None:
        try:
            await agent.run()
        except TransportError as exc:  # stopped while it still could not register
            ended.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await _until(lambda: len(transport.tries) >= 6, 10)
        assert agent.stats.connection_error == "cannot reach the portal: connection refused"
        agent.stop()
    assert len(ended) == 1
    gaps = [b - a for a, b in zip(transport.tries, transport.tries[1:], strict=False)]
    # 0.05, 0.1, 0.2, 0.4, 0.4 s: doubled each time, up to the cap (loose upper bounds for
    # a loaded machine).
    assert 0.04 < gaps[0] < 0.3 and 0.09 < gaps[1] < 0.4 and 0.19 < gaps[2] < 0.6
    assert all(0.35 < gap < 0.9 for gap in gaps[3:5]), gaps


class LimitedOnce(Registering):
    """The coordinator refuses the first registration as a rate-limited portal does."""

    async def register(self, info: NodeInfo) -> Registration:
        if not self.tries:
            self.tries.append(time.monotonic())
            raise RateLimited("too many node registrations from this address; try again in 1 s")
        return await super().register(info)


async def test_a_rate_limited_registration_waits_as_told_then_registers(
    sqlite_db: Engine, wowlab_hooks: Hooks, tmp_path: Any
) -> None:
    agent, transport = registering_agent(LimitedOnce, sqlite_db, wowlab_hooks, tmp_path)
    creds = await agent.ensure_registered()  # does not raise: it waits and tries again
    assert creds.node_id > 0 and len(transport.tries) == 2
    assert 0.95 < transport.tries[1] - transport.tries[0] < 5  # the 1 s it was told
    assert agent.stats.last_error is not None and "try again in 1 s" in agent.stats.last_error
