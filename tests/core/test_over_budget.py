"""The coordinator's side of chunk budgets: budgets on leases, over-budget chunks cut
smaller without counting a failure, and node speeds kept in events per second."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session
from wowlab_core.errors import InvalidRequest
from wowlab_core.models import ChunkStatus, JobStatus, Node, SimChunk, SimJob
from wowlab_core.planning import MIN_BUDGET_SECONDS
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Completion, Heartbeat
from wowlab_core.results import merge_in_seed_order
from wowlab_core.testing.conformance import toy_result
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_core.testing.toy_engine import ToyEngine

from .helpers import make_job, make_node, make_user

SLOW_TOY = {"base_dps": 1000, "spread": 100, "iteration_ms": 20}


def _chunks(db: Engine, job_id: int) -> list[SimChunk]:
    with read_session(db) as s:
        rows = s.exec(select(SimChunk).where(SimChunk.job_id == job_id)).all()
        return sorted(rows, key=lambda c: c.seed_offset)


def test_a_lease_carries_a_budget_from_the_chunks_expected_cost(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner, max_parallel=4)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    # 20 ms per iteration: a 4,000-iteration chunk is ~80 s of work, its budget 10x, capped.
    make_job(db, owner, wowlab_hooks, iterations=8000, chunks=2, config=SLOW_TOY)
    [lease] = coordinator.lease(creds, 1)
    assert lease.budget_seconds == 600.0
    # A cheap config: the floor (start-up, a busy machine).
    make_job(db, owner, wowlab_hooks, iterations=100, chunks=1, seed=3)
    [cheap] = [le for le in coordinator.lease(creds, 4) if le.iterations == 100]
    assert cheap.budget_seconds == MIN_BUDGET_SECONDS


def test_over_budget_cuts_the_chunk_in_halves_and_counts_no_failure(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    job_id = make_job(db, owner, wowlab_hooks, iterations=101, chunks=1, seed=5)
    [lease] = coordinator.lease(creds, 1)
    coordinator.fail(creds, lease.chunk_id, lease.lease_token, "ran 30 s", reason="over-budget")
    first, second = _chunks(db, job_id)
    assert (first.seed_offset, first.iterations) == (0, 51)
    assert (second.seed_offset, second.iterations) == (51, 50)
    assert {first.status, second.status} == {ChunkStatus.PENDING.value}
    assert first.failures == second.failures == 0
    assert first.error is not None and "over budget on node 'node'" in first.error
    # A late result for the whole old chunk no longer fits and is refused...
    [late] = coordinator.complete(
        creds, [Completion(lease.chunk_id, lease.lease_token, toy_result(lease))]
    )
    assert late.outcome == "rejected"
    # ... and the halves complete the job to the same report as one chunk would.
    leases = coordinator.lease(creds, 2)
    coordinator.complete(
        creds, [Completion(le.chunk_id, le.lease_token, toy_result(le)) for le in leases]
    )
    coordinator.settle()
    with read_session(db) as s:
        job = s.get(SimJob, job_id)
        assert job is not None and job.status == JobStatus.COMPLETED.value
    engine = ToyEngine()
    whole = engine.run_chunk(
        engine.prepare({"base_dps": 1000, "spread": 300}), seed=5, seed_offset=0, iterations=101
    )
    merged = merge_in_seed_order(
        [
            engine.run_chunk(
                engine.prepare({"base_dps": 1000, "spread": 300}),
                seed=5,
                seed_offset=c.seed_offset,
                iterations=c.iterations,
            )
            for c in _chunks(db, job_id)
        ]
    )
    assert merged.to_dict() == whole.to_dict()


def test_a_single_iteration_over_budget_counts_as_a_failure(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner)
    _, other = make_node(db, owner, name="other")
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    coordinator.heartbeat(other, Heartbeat())  # online: the chunk may wait for it
    job_id = make_job(db, owner, wowlab_hooks, iterations=1, chunks=1)
    [lease] = coordinator.lease(creds, 1)
    coordinator.fail(creds, lease.chunk_id, lease.lease_token, "slow", reason="over-budget")
    [chunk] = _chunks(db, job_id)
    assert chunk.failures == 1 and chunk.status == ChunkStatus.PENDING.value
    assert coordinator.lease(creds, 1) == []  # a failed chunk never goes back to its node
    [lease] = coordinator.lease(other, 1)
    coordinator.fail(other, lease.chunk_id, lease.lease_token, "slow", reason="over-budget")
    [chunk] = _chunks(db, job_id)
    assert chunk.failures == 2 and chunk.status == ChunkStatus.FAILED.value


def test_an_unknown_fail_reason_is_refused(db: Engine, wowlab_hooks: Hooks) -> None:
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    make_job(db, owner, wowlab_hooks, iterations=10, chunks=1)
    [lease] = coordinator.lease(creds, 1)
    with pytest.raises(InvalidRequest) as refused:
        coordinator.fail(creds, lease.chunk_id, lease.lease_token, "x", reason="not-my-fault")
    assert refused.value.field == "reason"


def test_node_speed_is_kept_in_events_per_second(db: Engine, wowlab_hooks: Hooks) -> None:
    owner = make_user(db, "owner")
    node, creds = make_node(db, owner)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    make_job(db, owner, wowlab_hooks, iterations=200, chunks=2)
    leases = coordinator.lease(creds, 2)
    # The toy counts 10 events per iteration: 200 iterations in 0.5 s = 4,000 events/s.
    coordinator.complete(
        creds,
        [Completion(le.chunk_id, le.lease_token, toy_result(le), 0.25) for le in leases],
    )
    with read_session(db) as s:
        stored = s.get(Node, node.id)
        assert stored is not None
        assert stored.events_per_second == pytest.approx(4000.0)
        assert stored.iterations_per_second == pytest.approx(400.0)
