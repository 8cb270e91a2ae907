"""Leases that always end, fair sharing, capabilities, quotas and bounded results."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from wowlab_core.access import set_access
from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session, write_session
from wowlab_core.errors import QuotaExceeded
from wowlab_core.hookspecs import hookimpl
from wowlab_core.jobs import JobLimits
from wowlab_core.leases import fair_shares
from wowlab_core.models import AccessType, ChunkStatus, JobStatus, SimChunk, SimJob
from wowlab_core.nodes import claim_and_announce
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Completion, Heartbeat, NodeCredentials, NodeInfo, Outcome
from wowlab_core.testing.conformance import running, toy_result
from wowlab_core.testing.plugin import TEST_SETTINGS

from .helpers import make_job, make_node, make_user

LONG = replace(TEST_SETTINGS, lease_seconds=600.0, verify_rate=0.0)


def chunks_of(db: Engine, job_id: int) -> list[SimChunk]:
    with read_session(db) as s:
        return list(s.exec(select(SimChunk).where(col(SimChunk.job_id) == job_id)).all())


def test_a_heartbeat_cannot_extend_a_lease_past_its_hard_deadline(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner)
    _, other = make_node(db, owner, name="other")
    job_id = make_job(db, owner, wowlab_hooks, iterations=10, chunks=1)
    settings = replace(TEST_SETTINGS, lease_seconds=0.6, min_lease_deadline_seconds=1.5)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=settings)
    [lease] = coordinator.lease(creds, 1)
    assert lease.deadline_at is not None and lease.expires_at is not None
    assert lease.deadline_at > lease.expires_at
    cancelled: list[int] = []
    started = time.monotonic()
    while time.monotonic() - started < 3.0:  # heartbeats keep coming, like a stuck engine's
        reply = coordinator.heartbeat(creds, running(lease))
        if reply.cancelled_chunks:
            cancelled = reply.cancelled_chunks
            break
        time.sleep(0.2)
    assert cancelled == [lease.chunk_id]  # the node is told to stop ...
    time.sleep(0.2)
    coordinator.reap()
    [again] = coordinator.lease(other, 1)  # ... and the chunk goes to another node
    assert again.chunk_id == lease.chunk_id
    [chunk] = chunks_of(db, job_id)
    assert chunk.expirations == 1


def test_a_node_serves_its_owner_first_then_users_in_turn(db: Engine, wowlab_hooks: Hooks) -> None:
    owner, ann, ben = make_user(db, "owner"), make_user(db, "ann"), make_user(db, "ben")
    node, creds = make_node(db, owner, max_parallel=6)
    with write_session(db) as s:
        set_access(s, node=node, grants=[(AccessType.PUBLIC, None)])
        s.commit()
    # ann submitted first and much more; ben later; the owner last.
    ann_job = make_job(db, ann, wowlab_hooks, iterations=200, chunks=20, allow_public=True)
    ben_job = make_job(db, ben, wowlab_hooks, iterations=200, chunks=20, allow_public=True)
    own_job = make_job(db, owner, wowlab_hooks, iterations=20, chunks=2)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=LONG)
    leases = coordinator.lease(creds, 6)
    by_job = {j: sum(le.job_id == j for le in leases) for j in (own_job, ann_job, ben_job)}
    assert by_job == {own_job: 2, ann_job: 2, ben_job: 2}


def test_fair_shares_even_out_chunks_in_flight() -> None:
    assert fair_shares(4, {1: 0, 2: 0}) == {1: 2, 2: 2}
    assert fair_shares(4, {1: 5, 2: 0, 3: 1}) == {1: 0, 2: 3, 3: 1}  # loads end at 5, 3, 2
    assert fair_shares(1, {7: 0, 3: 0}) == {7: 0, 3: 1}
    assert fair_shares(0, {1: 0}) == {1: 0}


def test_nodes_lease_only_chunks_of_engines_they_run(db: Engine, wowlab_hooks: Hooks) -> None:
    owner = make_user(db, "owner")
    job_id = make_job(db, owner, wowlab_hooks, iterations=10, chunks=1)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=LONG)
    base = coordinator.register(NodeInfo(name="base-install", engines={}))
    other_version = coordinator.register(NodeInfo(name="old", engines={"toy": "0"}))
    right = coordinator.register(NodeInfo(name="right", engines={"toy": "1", "numba": "9"}))
    for reg in (base, other_version, right):
        claim_and_announce(db, user_id=owner.id or 0, code=reg.claim_code, hooks=wowlab_hooks)
    creds = {r.node_id: NodeCredentials(r.node_id, r.token) for r in (base, other_version, right)}
    assert coordinator.lease(creds[base.node_id], 1) == []
    assert coordinator.lease(creds[other_version.node_id], 1) == []
    [lease] = coordinator.lease(creds[right.node_id], 1)
    assert lease.job_id == job_id
    # A node that installs the engine later says so in its heartbeat.
    coordinator.heartbeat(creds[right.node_id], Heartbeat())  # hands the lease back
    coordinator.heartbeat(creds[base.node_id], Heartbeat(engines={"toy": "1"}))
    assert len(coordinator.lease(creds[base.node_id], 1)) == 1


def test_access_hooks_see_the_job_and_the_node_labels(db: Engine, wowlab_hooks: Hooks) -> None:
    asked: list[tuple[int | None, Any]] = []

    class NoRaidSims:
        @hookimpl
        def wowlab_can_use_node(self, user: Any, node: Any, grants: Any, job: Any) -> bool:
            asked.append((job.id if job is not None else None, node.labels))
            return job is None or "no-raid" not in (node.labels or []) or job.total_iterations < 50

    wowlab_hooks.pm.register(NoRaidSims())
    owner = make_user(db, "owner")
    small = make_job(db, owner, wowlab_hooks, iterations=20, chunks=4)
    big = make_job(db, owner, wowlab_hooks, iterations=400, chunks=4)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=LONG)
    reg = coordinator.register(NodeInfo(name="picky", max_parallel=8, labels=["no-raid", "fast"]))
    claim_and_announce(db, user_id=owner.id or 0, code=reg.claim_code, hooks=wowlab_hooks)
    leases = coordinator.lease(NodeCredentials(reg.node_id, reg.token), 8)
    assert {le.job_id for le in leases} == {small}
    # Asked once per job of the lease call, not once per chunk.
    assert sorted(j for j, _ in asked if j is not None) == sorted([small, big])
    assert all(labels == ["fast", "no-raid"] for _, labels in asked)


def test_per_user_limits_on_active_jobs_and_queued_iterations(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    owner = make_user(db, "owner")
    limits = JobLimits(max_active_jobs=2, max_queued_iterations=1000)
    make_job(db, owner, wowlab_hooks, iterations=400, limits=limits)
    with pytest.raises(QuotaExceeded, match="iterations to run"):
        make_job(db, owner, wowlab_hooks, iterations=700, limits=limits)
    make_job(db, owner, wowlab_hooks, iterations=600, limits=limits)
    with pytest.raises(QuotaExceeded, match="2 jobs pending or running"):
        make_job(db, owner, wowlab_hooks, iterations=1, limits=limits)
    with read_session(db) as s:
        assert len(s.exec(select(SimJob)).all()) == 2  # nothing half-written


def test_a_stored_result_out_of_bounds_cannot_stop_a_job_from_ending(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner)
    job_id = make_job(db, owner, wowlab_hooks, iterations=20, chunks=2)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=LONG)
    first, second = coordinator.lease(creds, 2)
    coordinator.complete(creds, [Completion(first.chunk_id, first.lease_token, toy_result(first))])
    # The review stored total_sq = 10**400 behind the scheduler's back.
    with write_session(db) as s:
        chunk = s.get(SimChunk, first.chunk_id)
        assert chunk is not None
        chunk.result = {**chunk.result, "total_sq": 10**400}
        s.add(chunk)
        s.commit()
    [outcome] = coordinator.complete(
        creds, [Completion(second.chunk_id, second.lease_token, toy_result(second))]
    )
    assert outcome.outcome == Outcome.ACCEPTED.value  # no 500 for the completing node
    assert coordinator.settle()  # the merge runs after the completing call returned
    with read_session(db) as s:
        job = s.get(SimJob, job_id)
        assert job is not None
        assert job.status == JobStatus.FAILED.value and "cannot be merged" in (job.error or "")


def test_a_result_with_an_absurd_sum_of_squares_is_rejected(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner)
    job_id = make_job(db, owner, wowlab_hooks, iterations=10, chunks=1)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=LONG)
    [lease] = coordinator.lease(creds, 1)
    forged = {**toy_result(lease), "total_sq": 10**400}
    [outcome] = coordinator.complete(creds, [Completion(lease.chunk_id, lease.lease_token, forged)])
    assert outcome.outcome == Outcome.REJECTED.value and "total_sq" in (outcome.detail or "")
    [chunk] = chunks_of(db, job_id)
    assert chunk.status == ChunkStatus.LEASED.value and chunk.result is None
