"""The SQL and the core decide alike where the conformance suite does not look: access
(friends, guild, public), engine versions, result verification (sampling the first result
of a node for each user it does not belong to, the submitter's own node checking first, a
liar flagged with notices), trust scores. The same script runs against the core's
coordinator (local transport) and against the SQL (supabase transport through the gateway),
and what each observes must be identical."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import anyio
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from wowlab_core.access import set_access
from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session, write_session
from wowlab_core.models import (
    AccessType,
    Friendship,
    Guild,
    GuildMember,
    Node,
    Notice,
    SimChunk,
    User,
)
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Completion, NodeCredentials, NodeInfo
from wowlab_core.testing.conformance import TOY_CONFIG, TransportHarness, toy_result
from wowlab_core.testing.databases import fresh_postgres_database
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_core.transport_local import LocalTransport
from wowlab_transport_supabase.client import SupabaseTransport
from wowlab_transport_supabase.testing import jwt
from wowlab_transport_supabase.testing.gateway import RpcGateway
from wowlab_transport_supabase.testing.harness import SqlCoordinator, harness_for

pytestmark = pytest.mark.anyio
# Long leases, no random sampling: only the first result of a node for a user is checked.
SETTINGS = replace(TEST_SETTINGS, lease_seconds=600.0, verify_rate=0.0)
WRONG = {"base_dps": 1000, "spread": 301}


@pytest.fixture
def core_harness(wowlab_hooks: Hooks) -> Iterator[TransportHarness]:
    """The core's coordinator on a plain database, reached through the local transport."""
    with fresh_postgres_database() as engine:
        coordinator = Coordinator(engine, hooks=wowlab_hooks, settings=SETTINGS)
        yield TransportHarness(coordinator, lambda: LocalTransport(coordinator))


@pytest.fixture
def sql_harness(supabase_db: Engine, gateway: RpcGateway, wowlab_hooks: Hooks) -> TransportHarness:
    """The SQL on a Supabase-like database, reached through supabase-py and the gateway."""
    coordinator = SqlCoordinator(supabase_db, hooks=wowlab_hooks, settings=SETTINGS)

    def make() -> Any:
        return SupabaseTransport(gateway.url, jwt.anon_key(), realtime=False)

    return harness_for(coordinator, make)


def _social(h: TransportHarness) -> None:
    """alice submits; bob is her friend, dave her guild mate, carol a stranger."""
    users = {name: h.user(name) for name in ("alice", "bob", "carol", "dave")}
    with write_session(h.coordinator.db) as s:
        s.add(
            Friendship(
                requester_id=users["alice"].id, addressee_id=users["bob"].id, status="accepted"
            )
        )
        guild = Guild(name="G", owner_id=users["alice"].id)
        s.add(guild)
        s.flush()
        for name in ("alice", "dave"):
            s.add(GuildMember(guild_id=guild.id or 0, user_id=users[name].id or 0))
        s.commit()
        h.coordinator.settings = SETTINGS  # (the SQL side stores them)
        h.guild_id = guild.id  # type: ignore[attr-defined]


def _share(h: TransportHarness, node_id: int, grants: list[tuple[str, int | None]]) -> None:
    with write_session(h.coordinator.db) as s:
        node = s.get(Node, node_id)
        assert node is not None
        set_access(s, node=node, grants=grants)
        s.commit()


async def _node(h: TransportHarness, t: Any, name: str, owner: str, **info: Any) -> NodeCredentials:
    reg = await t.register(NodeInfo(name=name, max_parallel=4, **info))
    await anyio.to_thread.run_sync(h.claim, reg.claim_code, owner)
    return NodeCredentials(reg.node_id, reg.token)


async def _script(h: TransportHarness) -> dict[str, Any]:
    """The scenario; returns everything observable, with ids replaced by names."""
    _social(h)
    t = h.make_transport()
    trace: list[Any] = []
    try:
        a1 = await _node(h, t, "A1", "alice")
        b1 = await _node(h, t, "B1", "bob")
        c1 = await _node(h, t, "C1", "carol")
        d1 = await _node(h, t, "D1", "dave")
        e1 = await _node(h, t, "E1", "alice", engines={"toy": "0"})  # the wrong version
        _share(h, b1.node_id, [(AccessType.FRIENDS, None)])
        _share(h, c1.node_id, [(AccessType.PUBLIC, None)])
        _share(h, d1.node_id, [(AccessType.GUILD, h.guild_id)])  # type: ignore[attr-defined]
        job_id = h.submit(60, chunks=6, owner="alice")

        async def lease(name: str, creds: NodeCredentials, n: int = 1) -> list[Any]:
            leases = await t.lease(creds, n)
            trace.append(("lease", name, [le.seed_offset for le in leases]))
            return leases

        async def complete(
            name: str,
            creds: NodeCredentials,
            leases: list[Any],
            config: dict[str, Any] | None = None,
        ) -> None:
            outcomes = await t.complete(
                creds,
                [
                    Completion(le.chunk_id, le.lease_token, toy_result(le, config or TOY_CONFIG))
                    for le in leases
                ],
            )
            trace.append(("complete", name, [o.outcome for o in outcomes]))

        await lease("C1", c1)  # a public node: not for a job that did not ask for them
        await lease("E1", e1)  # runs another version of the engine
        got = await lease("B1", b1)  # a friend's node
        await complete("B1", b1, got)  # its first result for alice: checked
        got_d1 = await lease("D1", d1)  # a guild mate's node: a pending chunk (checks by
        # others than the submitter's own or trusted nodes wait 10 s)
        got = await lease("A1", a1)  # alice's own node checks bob's result at once
        await complete("A1", a1, got)
        await complete("D1", d1, got_d1, WRONG)  # dave's node lies (well-formed, wrong sums)
        got = await lease("A1", a1, 3)  # checks it first, then pending chunks
        await complete("A1", a1, got)
        await lease("D1", d1)  # flagged: only its owner's jobs now
        for name, creds in (("B1", b1), ("A1", a1)):
            while got := await lease(name, creds, 4):
                await complete(name, creds, got)
    finally:
        await t.aclose()
    job = h.job(job_id)
    with read_session(h.coordinator.db) as s:
        names = {n.id: n.name for n in s.exec(select(Node)).all()}
        users = {u.id: u.username for u in s.exec(select(User)).all()}
        chunks = [
            (
                c.seed_offset,
                c.iterations,
                c.status,
                c.verify_state,
                names.get(c.computed_by),
                names.get(c.verified_by),
            )
            for c in s.exec(select(SimChunk).order_by(col(SimChunk.seed_offset))).all()
        ]
        nodes = sorted(
            (n.name, n.flagged_at is not None, n.trust_score) for n in s.exec(select(Node)).all()
        )
        notices = sorted((users[n.user_id], n.kind) for n in s.exec(select(Notice)).all())
    return {
        "trace": trace,
        "job": (job.status, job.completed_iterations),
        "report_iterations": (job.result or {}).get("iterations"),
        "chunks": chunks,
        "nodes": nodes,
        "notices": notices,
    }


async def test_the_sql_decides_as_the_core_does(
    core_harness: TransportHarness, sql_harness: TransportHarness
) -> None:
    core = await _script(core_harness)
    sql = await _script(sql_harness)
    # The scenario did what it is about (on the core; the SQL must match it exactly).
    assert ("lease", "C1", []) in core["trace"] and ("lease", "E1", []) in core["trace"]
    assert ("D1", True, 0) in core["nodes"] and ("B1", False, 1) in core["nodes"]
    assert ("dave", "node-flagged") in core["notices"]
    assert ("alice", "wrong-result") in core["notices"]
    assert core["job"] == ("completed", 60) and core["report_iterations"] == 60
    assert sql == core
