"""The transport conformance suite: what every node transport must do.

Use it by subclassing :class:`TransportConformance` in your test module and providing a
``transport_harness`` fixture that returns a :class:`TransportHarness`::

    class TestMyTransport(TransportConformance):
        @pytest.fixture
        async def transport_harness(self, wowlab_db, wowlab_hooks):
            coordinator = Coordinator(wowlab_db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
            server = await start_my_server(coordinator)     # your server side
            yield TransportHarness(
                coordinator,
                lambda: MyTransport(server.url),
                # a transport to a server that is not there (a closed port):
                make_unreachable_transport=lambda: MyTransport("myproto://127.0.0.1:9"),
            )
            await server.stop()

The harness's coordinator must use :data:`wowlab_core.testing.plugin.TEST_SETTINGS`
(1 s leases) and the ``wowlab_hooks`` fixture (which has the toy engine); some tests
replace ``coordinator.settings`` for their duration, so the server side must read the
settings from the coordinator object at each call. The suite acts
on the server side through the database (claiming nodes, submitting and cancelling jobs)
and on the node side only through the transport.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import anyio
import pytest
from sqlmodel import col, select

from wowlab_core.agent import AgentOptions, NodeAgent
from wowlab_core.cache import CacheSettings, MemoryDiskCache
from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session, write_session
from wowlab_core.errors import AuthenticationFailed, LeaseLost, NotFound, TransportError
from wowlab_core.jobs import submit_job
from wowlab_core.models import ChunkStatus, JobStatus, SimChunk, SimJob, User
from wowlab_core.nodes import claim_and_announce
from wowlab_core.protocol import (
    Completion,
    Heartbeat,
    Lease,
    NodeCredentials,
    NodeInfo,
    Outcome,
    RunningChunk,
)
from wowlab_core.scheduler import cancel_job
from wowlab_core.testing.toy_engine import ToyEngine

TOY_CONFIG = {"base_dps": 1000, "spread": 300}


@dataclass
class TransportHarness:
    """The server side of a transport under test, and a way to make node-side clients."""

    coordinator: Coordinator
    make_transport: Callable[[], Any]
    #: A transport whose server side is down or unreachable (None: the suite cannot check
    #: that such a transport raises ``TransportError``, and says so).
    make_unreachable_transport: Callable[[], Any] | None = None

    # --- server-side helpers (through the database, as the portal would) -------------

    def user(self, name: str = "owner") -> User:
        """A user (created on first use)."""
        with write_session(self.coordinator.db) as s:
            user = s.exec(select(User).where(col(User.username) == name)).first()
            if user is None:
                user = User(username=name)
                s.add(user)
                s.commit()
            return user

    def claim(self, code: str, owner: str = "owner") -> None:
        """Claim the node showing ``code`` for ``owner``."""
        user = self.user(owner)
        claim_and_announce(
            self.coordinator.db, user_id=user.id or 0, code=code, hooks=self.coordinator.hooks
        )

    def submit(
        self,
        iterations: int,
        *,
        chunks: int,
        owner: str = "owner",
        seed: int = 7,
        config: dict[str, Any] | None = None,
    ) -> int:
        """Submit a toy job; returns its id."""
        user = self.user(owner)
        with write_session(self.coordinator.db) as s:
            job = submit_job(
                s,
                user=user,
                config=config or TOY_CONFIG,
                iterations=iterations,
                engine_name="toy",
                seed=seed,
                hooks=self.coordinator.hooks,
                chunks=chunks,
            )
            s.commit()
            job_id = job.id or 0
        self.coordinator.notify_work()
        return job_id

    def job(self, job_id: int) -> SimJob:
        """A job as stored once the coordinator's finisher merged what it was given (a
        job is merged after the call that completed its last chunk returned)."""
        assert self.coordinator.settle(), "the coordinator's finisher did not settle in 30 s"
        with read_session(self.coordinator.db) as s:
            job = s.get(SimJob, job_id)
            assert job is not None
            return job

    def chunks(self, job_id: int) -> list[SimChunk]:
        """A job's chunks as stored now."""
        with read_session(self.coordinator.db) as s:
            return list(s.exec(select(SimChunk).where(col(SimChunk.job_id) == job_id)).all())

    def cancel(self, job_id: int) -> None:
        """Cancel a job."""
        with write_session(self.coordinator.db) as s:
            job = s.get(SimJob, job_id)
            assert job is not None
            cancel_job(s, job=job)
            s.commit()


def toy_result(lease: Lease, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The correct result of a leased toy chunk."""
    engine = ToyEngine()
    prepared = engine.prepare(config or TOY_CONFIG)
    return engine.run_chunk(
        prepared, seed=lease.seed, seed_offset=lease.seed_offset, iterations=lease.iterations
    ).to_dict()


async def registered_node(
    harness: TransportHarness,
    transport: Any,
    *,
    claim: bool = True,
    owner: str = "owner",
    name: str = "node",
    max_parallel: int = 2,
) -> NodeCredentials:
    """Register a node through ``transport`` and (by default) claim it."""
    reg = await transport.register(
        NodeInfo(name=name, max_parallel=max_parallel, cores=2, platform="test")
    )
    creds = NodeCredentials(node_id=reg.node_id, token=reg.token)
    if claim:
        await anyio.to_thread.run_sync(harness.claim, reg.claim_code, owner)
    return creds


def running(*leases: Lease, done: int = 0) -> Heartbeat:
    """A heartbeat naming ``leases`` as the chunks the node runs."""
    return Heartbeat(running=[RunningChunk(le.chunk_id, le.lease_token, done) for le in leases])


async def complete_all(
    transport: Any, creds: NodeCredentials, leases: Sequence[Lease]
) -> list[Any]:
    """Complete every lease with its correct result."""
    outcomes: list[Any] = await transport.complete(
        creds,
        [
            Completion(chunk_id=le.chunk_id, lease_token=le.lease_token, result=toy_result(le))
            for le in leases
        ],
    )
    return outcomes


@pytest.mark.anyio
class TransportConformance:
    """Behaviour every node transport must show. Subclass it and provide ``transport_harness``."""

    async def test_register_shows_code_until_claimed(
        self, transport_harness: TransportHarness
    ) -> None:
        transport = transport_harness.make_transport()
        try:
            reg = await transport.register(NodeInfo(name="n1", max_parallel=2))
            assert len(reg.claim_code) == 6
            creds = NodeCredentials(node_id=reg.node_id, token=reg.token)
            status = await transport.claim_status(creds)
            assert not status.claimed and status.claim_code == reg.claim_code
            await anyio.to_thread.run_sync(transport_harness.claim, reg.claim_code.lower(), "alice")
            status = await transport.claim_status(creds)
            assert status.claimed and status.owner == "alice" and status.claim_code is None
        finally:
            await transport.aclose()

    async def test_claim_status_long_poll_answers_when_claimed(
        self, transport_harness: TransportHarness
    ) -> None:
        transport = transport_harness.make_transport()
        try:
            reg = await transport.register(NodeInfo(name="n1"))
            creds = NodeCredentials(node_id=reg.node_id, token=reg.token)

            async def claim_later() -> None:
                await anyio.sleep(0.3)
                await anyio.to_thread.run_sync(transport_harness.claim, reg.claim_code)

            started = anyio.current_time()
            async with anyio.create_task_group() as tg:
                tg.start_soon(claim_later)
                status = await transport.claim_status(creds, wait=10.0)
            assert status.claimed
            assert anyio.current_time() - started < 5.0
        finally:
            await transport.aclose()

    async def test_bad_token_is_rejected_everywhere(
        self, transport_harness: TransportHarness
    ) -> None:
        transport = transport_harness.make_transport()
        try:
            creds = await registered_node(transport_harness, transport)
            other = await registered_node(transport_harness, transport, name="other")
            transport_harness.submit(100, chunks=2)
            bad = [
                NodeCredentials(creds.node_id, "not-the-token"),
                NodeCredentials(other.node_id, creds.token),
                NodeCredentials(999_999, creds.token),
            ]
            for wrong in bad:
                with pytest.raises(AuthenticationFailed):
                    await transport.claim_status(wrong)
                with pytest.raises(AuthenticationFailed):
                    await transport.heartbeat(wrong, Heartbeat())
                with pytest.raises(AuthenticationFailed):
                    await transport.lease(wrong, 1)
                with pytest.raises(AuthenticationFailed):
                    await transport.get_config(wrong, "0" * 64)
                with pytest.raises(AuthenticationFailed):
                    await transport.complete(wrong, [])
                with pytest.raises(AuthenticationFailed):
                    await transport.fail(wrong, 1, "x", "boom")
                with pytest.raises(AuthenticationFailed):
                    await transport.release(wrong, [1], "x")
                with pytest.raises(AuthenticationFailed):
                    await transport.go_offline(wrong)
                with pytest.raises(AuthenticationFailed):
                    await transport.wait_for_work(wrong, 0.1)
            # Nothing was leased by the impostors.
            assert len(await transport.lease(creds, 10)) == 2
        finally:
            await transport.aclose()

    async def test_unreachable_server_raises_transport_error(
        self, transport_harness: TransportHarness
    ) -> None:
        if transport_harness.make_unreachable_transport is None:
            pytest.skip("the harness gives no make_unreachable_transport: not checked")
        transport = transport_harness.make_unreachable_transport()
        creds = NodeCredentials(node_id=1, token="token")
        try:
            with anyio.fail_after(60):
                with pytest.raises(TransportError):
                    await transport.register(NodeInfo(name="n1"))
                with pytest.raises(TransportError):
                    await transport.claim_status(creds)
                with pytest.raises(TransportError):
                    await transport.heartbeat(creds, Heartbeat())
                with pytest.raises(TransportError):
                    await transport.lease(creds, 1)
        finally:
            await transport.aclose()

    async def test_lease_is_exclusive_under_concurrency(
        self, transport_harness: TransportHarness
    ) -> None:
        transports = [transport_harness.make_transport() for _ in range(8)]
        # Long leases: on a loaded machine 1 s leases may really expire mid-test and be
        # (rightly) reissued, which is not what this test is about.
        coordinator = transport_harness.coordinator
        coordinator.settings = replace(coordinator.settings, lease_seconds=600.0)
        try:
            nodes = [
                await registered_node(transport_harness, t, name=f"n{i}", max_parallel=64)
                for i, t in enumerate(transports)
            ]
            job_id = transport_harness.submit(400, chunks=200)
            got: list[int] = []

            async def leaser(t: Any, creds: NodeCredentials) -> None:
                while True:
                    leases = await t.lease(creds, 3)
                    if not leases:
                        return
                    got.extend(le.chunk_id for le in leases)

            async with anyio.create_task_group() as tg:
                for t, creds in zip(transports, nodes, strict=True):
                    tg.start_soon(leaser, t, creds)
            assert len(got) == 200
            assert len(set(got)) == 200
            assert {c.id for c in transport_harness.chunks(job_id)} == set(got)
        finally:
            for t in transports:
                await t.aclose()

    async def test_expired_lease_is_reissued_and_late_result_counts_once(
        self, transport_harness: TransportHarness
    ) -> None:
        a, b = transport_harness.make_transport(), transport_harness.make_transport()
        try:
            node_a = await registered_node(transport_harness, a, name="a")
            node_b = await registered_node(transport_harness, b, name="b")
            job_id = transport_harness.submit(10, chunks=1)
            [first] = await a.lease(node_a, 1)
            assert await b.lease(node_b, 1) == []
            await anyio.sleep(transport_harness.coordinator.settings.lease_seconds + 0.3)
            [second] = await b.lease(node_b, 1)  # the lease ran out: reissued to b
            assert second.chunk_id == first.chunk_id and second.lease_token != first.lease_token
            [late] = await complete_all(a, node_a, [first])  # a's late but valid result
            assert late.outcome == Outcome.ACCEPTED.value
            [dup] = await complete_all(b, node_b, [second])
            assert dup.outcome == Outcome.DUPLICATE.value
            job = transport_harness.job(job_id)
            assert job.status == JobStatus.COMPLETED.value and job.completed_iterations == 10
        finally:
            await a.aclose()
            await b.aclose()

    async def test_heartbeat_extends_leases(self, transport_harness: TransportHarness) -> None:
        transport = transport_harness.make_transport()
        other = transport_harness.make_transport()
        try:
            creds = await registered_node(transport_harness, transport)
            creds_other = await registered_node(transport_harness, other, name="other")
            transport_harness.submit(10, chunks=1)
            # 3 s leases, a heartbeat every 0.5 s: a loaded machine (a CI run near its end)
            # may hold a request up by 2.5 s before the lease runs out under it.
            coordinator = transport_harness.coordinator
            coordinator.settings = replace(coordinator.settings, lease_seconds=3.0)
            [lease] = await transport.lease(creds, 1)
            lease_seconds = coordinator.settings.lease_seconds
            for _ in range(12):  # twice the lease time, kept alive by heartbeats
                await anyio.sleep(lease_seconds / 6)
                reply = await transport.heartbeat(creds, running(lease, done=3))
                assert (reply.cancelled_chunks, reply.released_chunks) == ([], [])
            assert await other.lease(creds_other, 1) == []
            [chunk] = transport_harness.chunks(lease.job_id)
            assert chunk.progress == 3  # the node's progress within the chunk is recorded
            [outcome] = await complete_all(transport, creds, [lease])
            assert outcome.outcome == Outcome.ACCEPTED.value
        finally:
            await transport.aclose()
            await other.aclose()

    async def test_duplicate_completions_count_once(
        self, transport_harness: TransportHarness
    ) -> None:
        transport = transport_harness.make_transport()
        try:
            creds = await registered_node(transport_harness, transport, max_parallel=3)
            job_id = transport_harness.submit(30, chunks=3)
            leases = await transport.lease(creds, 3)
            outcomes: list[str] = []

            async def send(lease: Lease) -> None:
                [o] = await complete_all(transport, creds, [lease])
                outcomes.append(o.outcome)

            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(send, leases[0])
            assert outcomes.count(Outcome.ACCEPTED.value) == 1
            assert outcomes.count(Outcome.DUPLICATE.value) == 9
            assert transport_harness.job(job_id).completed_iterations == 10
            await complete_all(transport, creds, leases)
            await complete_all(transport, creds, leases)
            job = transport_harness.job(job_id)
            assert job.completed_iterations == 30 and job.status == JobStatus.COMPLETED.value
        finally:
            await transport.aclose()

    async def test_wrong_lease_token_and_wrong_result_are_rejected(
        self, transport_harness: TransportHarness
    ) -> None:
        transport = transport_harness.make_transport()
        try:
            creds = await registered_node(transport_harness, transport)
            job_id = transport_harness.submit(20, chunks=2)
            first, second = await transport.lease(creds, 2)
            forged = Completion(
                chunk_id=first.chunk_id, lease_token="forged", result=toy_result(first)
            )
            swapped = Completion(
                chunk_id=first.chunk_id, lease_token=first.lease_token, result=toy_result(second)
            )
            outcomes = await transport.complete(creds, [forged, swapped])
            assert [o.outcome for o in outcomes] == [Outcome.REJECTED.value] * 2
            assert transport_harness.job(job_id).completed_iterations == 0
        finally:
            await transport.aclose()

    async def test_config_fetch(self, transport_harness: TransportHarness) -> None:
        transport = transport_harness.make_transport()
        try:
            creds = await registered_node(transport_harness, transport)
            transport_harness.submit(10, chunks=1)
            [lease] = await transport.lease(creds, 1)
            payload = await transport.get_config(creds, lease.config_hash)
            assert payload.config == TOY_CONFIG and payload.engine == "toy"
            with pytest.raises(NotFound):
                await transport.get_config(creds, "f" * 64)
            stranger = await registered_node(transport_harness, transport, name="stranger")
            with pytest.raises(NotFound):  # a node that never leased it may not read it
                await transport.get_config(stranger, lease.config_hash)
        finally:
            await transport.aclose()

    async def test_cancel_stops_work(self, transport_harness: TransportHarness) -> None:
        transport = transport_harness.make_transport()
        try:
            creds = await registered_node(transport_harness, transport)
            job_id = transport_harness.submit(40, chunks=4)
            [lease] = await transport.lease(creds, 1)
            await anyio.to_thread.run_sync(transport_harness.cancel, job_id)
            assert await transport.lease(creds, 5) == []
            reply = await transport.heartbeat(creds, running(lease))
            assert reply.cancelled_chunks == [lease.chunk_id]
            [outcome] = await complete_all(transport, creds, [lease])
            assert outcome.outcome == Outcome.IGNORED.value
            job = transport_harness.job(job_id)
            assert job.status == JobStatus.CANCELLED.value and job.completed_iterations == 0
        finally:
            await transport.aclose()

    async def test_a_failed_chunk_goes_to_another_node_then_fails_the_job(
        self, transport_harness: TransportHarness
    ) -> None:
        a, b = transport_harness.make_transport(), transport_harness.make_transport()
        coordinator = transport_harness.coordinator
        coordinator.settings = replace(coordinator.settings, lease_seconds=600.0)
        try:
            node_a = await registered_node(transport_harness, a, name="a")
            node_b = await registered_node(transport_harness, b, name="b")
            job_id = transport_harness.submit(10, chunks=1)
            [lease] = await a.lease(node_a, 1)
            await a.fail(node_a, lease.chunk_id, lease.lease_token, "boom on a")
            with pytest.raises(LeaseLost):  # a second report of the same failure
                await a.fail(node_a, lease.chunk_id, lease.lease_token, "again")
            # One machine's failure does not fail the job, and that machine does not get
            # the chunk again while another node may run it.
            assert transport_harness.job(job_id).status == JobStatus.RUNNING.value
            assert await a.lease(node_a, 1) == []
            [again] = await b.lease(node_b, 1)
            assert again.chunk_id == lease.chunk_id
            await b.fail(node_b, again.chunk_id, again.lease_token, "boom on b")
            job = transport_harness.job(job_id)
            assert job.status == JobStatus.FAILED.value
            assert job.error is not None and "boom on b" in job.error and "2 different" in job.error
            assert [c.status for c in transport_harness.chunks(job_id)] == [
                ChunkStatus.FAILED.value
            ]
        finally:
            await a.aclose()
            await b.aclose()

    async def test_leases_never_exceed_max_parallel(
        self, transport_harness: TransportHarness
    ) -> None:
        transport = transport_harness.make_transport()
        coordinator = transport_harness.coordinator
        coordinator.settings = replace(coordinator.settings, lease_seconds=600.0)
        try:
            creds = await registered_node(transport_harness, transport, max_parallel=2)
            transport_harness.submit(80, chunks=8)
            first = await transport.lease(creds, 8)
            assert len(first) == 2
            assert await transport.lease(creds, 8) == []  # both workers are busy
            await complete_all(transport, creds, first[:1])
            assert len(await transport.lease(creds, 8)) == 1
        finally:
            await transport.aclose()

    async def test_heartbeat_hands_back_leases_it_does_not_name(
        self, transport_harness: TransportHarness
    ) -> None:
        """A node that lost track of a lease (a restart, a lost answer) does not keep it."""
        transport = transport_harness.make_transport()
        other = transport_harness.make_transport()
        # Leases that do not run out mid-test on a loaded machine (not what this is about).
        coordinator = transport_harness.coordinator
        coordinator.settings = replace(coordinator.settings, lease_seconds=600.0)
        try:
            creds = await registered_node(transport_harness, transport)
            creds_other = await registered_node(transport_harness, other, name="other")
            transport_harness.submit(20, chunks=2)
            kept, lost = await transport.lease(creds, 2)
            reply = await transport.heartbeat(creds, running(kept))
            assert reply.released_chunks == [lost.chunk_id] and reply.cancelled_chunks == []
            [taken] = await other.lease(creds_other, 2)
            assert taken.chunk_id == lost.chunk_id  # at once, not after the lease ran out
            # A restarted node names nothing: everything its identity held goes back.
            reply = await transport.heartbeat(creds, Heartbeat())
            assert reply.released_chunks == [kept.chunk_id]
        finally:
            await transport.aclose()
            await other.aclose()

    async def test_heartbeat_tells_a_node_to_stop_a_lease_it_lost(
        self, transport_harness: TransportHarness
    ) -> None:
        a, b = transport_harness.make_transport(), transport_harness.make_transport()
        try:
            node_a = await registered_node(transport_harness, a, name="a")
            node_b = await registered_node(transport_harness, b, name="b")
            transport_harness.submit(10, chunks=1)
            [first] = await a.lease(node_a, 1)
            coordinator = transport_harness.coordinator
            await anyio.sleep(coordinator.settings.lease_seconds + 0.3)
            # b's lease must outlive the rest of the test on a loaded machine (a 1 s lease
            # can run out before b's heartbeat, which then rightly cancels it too).
            coordinator.settings = replace(coordinator.settings, lease_seconds=600.0)
            [second] = await b.lease(node_b, 1)
            assert second.chunk_id == first.chunk_id
            reply = await a.heartbeat(node_a, running(first))
            assert reply.cancelled_chunks == [first.chunk_id]
            # b's lease is untouched by a's heartbeat.
            reply = await b.heartbeat(node_b, running(second))
            assert reply.cancelled_chunks == [] and reply.released_chunks == []
        finally:
            await a.aclose()
            await b.aclose()

    async def test_over_budget_is_not_a_failure_and_cuts_the_chunk(
        self, transport_harness: TransportHarness
    ) -> None:
        transport = transport_harness.make_transport()
        try:
            creds = await registered_node(transport_harness, transport, max_parallel=10)
            job_id = transport_harness.submit(10, chunks=1)
            for _ in range(4):  # more reports than max_attempts: none counts
                leases = await transport.lease(creds, 1)
                lease = leases[0]
                assert lease.budget_seconds is not None and lease.budget_seconds > 0
                await transport.fail(
                    creds, lease.chunk_id, lease.lease_token, "over budget", reason="over-budget"
                )
            chunks = sorted(transport_harness.chunks(job_id), key=lambda c: c.seed_offset)
            assert transport_harness.job(job_id).status != JobStatus.FAILED.value
            assert all(c.failures == 0 for c in chunks)
            assert sum(c.iterations for c in chunks) == 10 and len(chunks) == 5
            everything = await transport.lease(creds, 10)
            await complete_all(transport, creds, everything)
            assert transport_harness.job(job_id).status == JobStatus.COMPLETED.value
        finally:
            await transport.aclose()

    async def test_release_hands_chunks_back(self, transport_harness: TransportHarness) -> None:
        transport = transport_harness.make_transport()
        try:
            creds = await registered_node(transport_harness, transport)
            transport_harness.submit(20, chunks=2)
            leases = await transport.lease(creds, 2)
            assert (
                await transport.release(
                    creds, [le.chunk_id for le in leases], leases[0].lease_token
                )
                == 2
            )
            again = await transport.lease(creds, 2)
            assert sorted(le.chunk_id for le in again) == sorted(le.chunk_id for le in leases)
        finally:
            await transport.aclose()

    async def test_agents_run_a_job_to_its_exact_report(
        self, transport_harness: TransportHarness, tmp_path: Any
    ) -> None:
        transports = [transport_harness.make_transport() for _ in range(2)]
        agents: list[NodeAgent] = []

        def claim(status: Any) -> None:
            transport_harness.claim(status.claim_code)

        try:
            for i, t in enumerate(transports):
                agents.append(
                    NodeAgent(
                        t,
                        info=NodeInfo(name=f"agent{i}", max_parallel=2),
                        hooks=transport_harness.coordinator.hooks,
                        cache=MemoryDiskCache(CacheSettings(directory=tmp_path / f"cache{i}")),
                        options=AgentOptions(
                            heartbeat_seconds=0.2, idle_wait_seconds=0.2, claim_wait_seconds=0.2
                        ),
                        on_claim_code=claim,
                    )
                )
            job_id = transport_harness.submit(1000, chunks=13)
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    for agent in agents:
                        tg.start_soon(agent.run)
                    while transport_harness.job(job_id).status != JobStatus.COMPLETED.value:
                        await anyio.sleep(0.05)
                    for agent in agents:
                        agent.stop()
            engine = ToyEngine()
            direct = engine.run_chunk(
                engine.prepare(TOY_CONFIG), seed=7, seed_offset=0, iterations=1000
            )
            report = transport_harness.job(job_id).result
            assert report["iterations"] == 1000
            assert report["dps"]["mean"] == round(direct.total / 1000 / 1000, 3)
            # Each chunk computed once; on a loaded machine a lease may run out and its chunk
            # be run again elsewhere (the late result still counts once: the report above).
            leases = sum(c.attempts for c in transport_harness.chunks(job_id))
            assert 13 <= sum(a.stats.chunks_completed for a in agents) <= leases
        finally:
            for t in transports:
                await t.aclose()


__all__ = [
    "TOY_CONFIG",
    "TransportConformance",
    "TransportHarness",
    "complete_all",
    "registered_node",
    "running",
    "toy_result",
]
