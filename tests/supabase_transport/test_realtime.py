"""Realtime as a wake-up hint: recorded Phoenix frames drive the real supabase-py client;
a claim is noticed in under 1 s with the hint and within 3 s by polling alone."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import anyio
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.protocol import NodeCredentials, NodeInfo
from wowlab_transport_supabase.client import CLAIM_POLL_MAX, SupabaseTransport
from wowlab_transport_supabase.testing import jwt
from wowlab_transport_supabase.testing.gateway import RpcGateway
from wowlab_transport_supabase.testing.harness import harness_for
from wowlab_transport_supabase.wake import WakeSignals, wake_topic

from .realtime_replay import RealtimeReplay, frame

pytestmark = pytest.mark.anyio


@pytest.fixture
def replay() -> Iterator[RealtimeReplay]:
    server = RealtimeReplay().start()
    yield server
    server.close()


async def test_recorded_frames_wake_the_right_signals() -> None:
    signals = WakeSignals(own_topic=wake_topic("my-token"))
    signals.handle_change(
        frame("insert", topic="t", id=1, wake_topic=wake_topic("other"))["payload"]
    )
    assert not signals.take_claim() and not signals.take_work()  # another node's hint
    signals.handle_change(frame("insert", topic="t", id=2, wake_topic="work")["payload"])
    assert signals.take_work() and not signals.take_claim()
    assert not signals.take_work()  # taken once
    signals.handle_change(
        frame("insert", topic="t", id=3, wake_topic=wake_topic("my-token"))["payload"]
    )
    assert signals.take_claim() and signals.take_work()
    unrelated = frame("insert", topic="t", id=4, wake_topic="work")["payload"]
    unrelated["data"]["table"] = "sim_jobs"
    signals.handle_change(unrelated)
    assert not signals.take_work()


def _wake_row(engine: Engine, topic: str) -> int:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("select id from wowlab_wakeups where topic = :t order by id desc limit 1"),
            {"t": topic},
        ).first()
    assert row is not None, "the claim did not write the node's wake-up row"
    return int(row[0])


async def _claim_latency(
    harness: object,
    transport: SupabaseTransport,
    engine: Engine,
    push: Callable[[int, str], None] | None,
) -> float:
    reg = await transport.register(NodeInfo(name="rt"))
    creds = NodeCredentials(reg.node_id, reg.token)
    claimed_at: list[float] = []
    noticed_at: list[float] = []

    async def claim_later() -> None:
        # Claim just after the poll that starts the longest interval (CLAIM_POLL_MAX):
        # polling alone would notice only about 2.3 s later.
        while transport.rpc_calls < 6:  # register, claim status, then 4 polls
            await anyio.sleep(0.01)
        await anyio.sleep(0.2)
        await anyio.to_thread.run_sync(harness.claim, reg.claim_code)  # type: ignore[attr-defined]
        claimed_at.append(time.monotonic())
        if push is not None:
            push(_wake_row(engine, wake_topic(reg.token)), wake_topic(reg.token))

    async with anyio.create_task_group() as tg:
        tg.start_soon(claim_later)
        status = await transport.claim_status(creds, wait=20.0)
        noticed_at.append(time.monotonic())
    assert status.claimed
    return noticed_at[0] - claimed_at[0]


async def test_claim_noticed_within_a_second_with_realtime(
    sql_coordinator: Coordinator, gateway: RpcGateway, replay: RealtimeReplay, supabase_db: Engine
) -> None:
    transport = SupabaseTransport(gateway.url, jwt.anon_key(), realtime_url=replay.url)
    harness = harness_for(sql_coordinator, lambda: transport)
    try:
        latency = await _claim_latency(harness, transport, supabase_db, replay.push_insert)
        assert replay.joined.is_set() and "apikey=" in replay.requests[0]
        assert latency < 1.0, latency
    finally:
        await transport.aclose()


async def test_claim_noticed_within_three_seconds_by_polling(
    sql_coordinator: Coordinator, gateway: RpcGateway, supabase_db: Engine
) -> None:
    transport = SupabaseTransport(gateway.url, jwt.anon_key(), realtime=False)
    harness = harness_for(sql_coordinator, lambda: transport)
    try:
        latency = await _claim_latency(harness, transport, supabase_db, None)
        assert 1.5 < latency <= 3.0, latency  # the longest wait between polls, and no more
        assert CLAIM_POLL_MAX < 3.0
    finally:
        await transport.aclose()


async def test_a_work_hint_ends_the_wait_for_work(
    gateway: RpcGateway, replay: RealtimeReplay
) -> None:
    transport = SupabaseTransport(gateway.url, jwt.anon_key(), realtime_url=replay.url)
    try:
        reg = await transport.register(NodeInfo(name="w"))
        creds = NodeCredentials(reg.node_id, reg.token)
        started = time.monotonic()
        async with anyio.create_task_group() as tg:

            async def hint() -> None:
                await anyio.to_thread.run_sync(replay.joined.wait, 10)
                await anyio.sleep(0.2)
                replay.push_insert(1, "work")

            tg.start_soon(hint)
            await transport.wait_for_work(creds, 15.0)
        assert time.monotonic() - started < 5.0
    finally:
        await transport.aclose()


async def test_without_realtime_the_node_still_works_by_polling(
    gateway: RpcGateway, make_transport: Callable[[], SupabaseTransport]
) -> None:
    """A Realtime URL that nothing answers: the wait is the poll timeout, not an error."""
    transport = SupabaseTransport(gateway.url, jwt.anon_key(), realtime_url="http://127.0.0.1:9")
    try:
        reg = await transport.register(NodeInfo(name="w"))
        creds = NodeCredentials(reg.node_id, reg.token)
        started = time.monotonic()
        await transport.wait_for_work(creds, 0.5)
        assert time.monotonic() - started < 15.0
        assert (await transport.lease(creds, 1)) == []
    finally:
        await transport.aclose()
