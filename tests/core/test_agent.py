"""The node agent's own behaviour around its transport: stopping and failing channels."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from sqlalchemy.engine import Engine

from wowlab_core.agent import AgentOptions, NodeAgent
from wowlab_core.cache import CacheSettings, MemoryDiskCache
from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session
from wowlab_core.errors import TransportError
from wowlab_core.models import SimJob
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import NodeCredentials, NodeInfo
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_core.transport_local import LocalTransport

from .helpers import make_job, make_user

pytestmark = pytest.mark.anyio


class FlakyPush(LocalTransport):
    """A local transport whose push channel is broken."""

    async def wait_for_work(self, creds: NodeCredentials, timeout: float) -> None:
        raise TransportError("push channel down")


def _agent(transport: Any, hooks: Hooks, tmp_path: Any, **kwargs: Any) -> NodeAgent:
    return NodeAgent(
        transport,
        info=NodeInfo(name="n"),
        hooks=hooks,
        cache=MemoryDiskCache(CacheSettings(directory=tmp_path)),
        options=AgentOptions(heartbeat_seconds=0.2, idle_wait_seconds=0.1, claim_wait_seconds=30),
        **kwargs,
    )


async def test_stop_ends_the_claim_long_poll_at_once(
    sqlite_db: Engine, wowlab_hooks: Hooks, tmp_path: Any
) -> None:
    agent = _agent(
        LocalTransport(Coordinator(sqlite_db, hooks=wowlab_hooks, settings=TEST_SETTINGS)),
        wowlab_hooks,
        tmp_path,
    )
    with anyio.fail_after(5):  # the claim poll alone would wait 30 s
        async with anyio.create_task_group() as tg:
            tg.start_soon(agent.run)
            while agent.stats.claim_code is None:
                await anyio.sleep(0.02)
            await anyio.sleep(0.3)  # now inside the 30 s long poll
            agent.stop()
    assert agent.stats.state != "working"


async def test_a_failing_push_channel_does_not_stop_the_node(
    sqlite_db: Engine, wowlab_hooks: Hooks, tmp_path: Any
) -> None:
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    owner = make_user(sqlite_db, "owner")

    def claim(status: Any) -> None:
        from wowlab_core.nodes import claim_and_announce

        claim_and_announce(sqlite_db, user_id=owner.id or 0, code=status.claim_code)

    agent = _agent(FlakyPush(coordinator), wowlab_hooks, tmp_path, on_claim_code=claim)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(agent.run)
            await anyio.sleep(0.5)  # idle: the broken push channel is used several times
            job_id = await anyio.to_thread.run_sync(
                lambda: make_job(sqlite_db, owner, wowlab_hooks, iterations=50, chunks=5)
            )
            while True:
                with read_session(sqlite_db) as s:
                    job = s.get(SimJob, job_id)
                    assert job is not None
                    if job.status == "completed":
                        break
                await anyio.sleep(0.05)
            agent.stop()
    assert agent.stats.chunks_completed == 5
    assert agent.stats.last_error == "push channel down"
