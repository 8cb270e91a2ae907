"""The leasing scheduler on real databases: exclusivity under concurrency, idempotent
completion, expiry, retries, cancel, and chunk history that survives deleting a node."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session, write_session
from wowlab_core.jobs import NO_NODE_REASON
from wowlab_core.models import ChunkStatus, JobStatus, Node, SimChunk, SimJob, User, utcnow
from wowlab_core.nodes import delete_stale_nodes, mark_offline_nodes
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Completion, Outcome
from wowlab_core.scheduler import MAX_EXPIRATIONS
from wowlab_core.testing.conformance import toy_result
from wowlab_core.testing.plugin import TEST_SETTINGS

from .helpers import make_job, make_node, make_user

LONG_LEASES = TEST_SETTINGS.__class__(lease_seconds=600)


def _job(db: Engine, job_id: int) -> SimJob:
    with read_session(db) as s:
        job = s.get(SimJob, job_id)
        assert job is not None
        return job


@pytest.mark.postgres
def test_concurrent_leasers_never_share_a_chunk_on_postgres(
    postgres_db: Engine, wowlab_hooks: Hooks
) -> None:
    """≥ 8 concurrent leasers, ≥ 2,000 chunks: every chunk leased exactly once."""
    owner = make_user(postgres_db, "owner")
    nodes = [make_node(postgres_db, owner, name=f"n{i}", max_parallel=256)[1] for i in range(10)]
    job_id = make_job(postgres_db, owner, wowlab_hooks, iterations=2400, chunks=2400)
    coordinator = Coordinator(
        postgres_db, hooks=wowlab_hooks, settings=TEST_SETTINGS.__class__(lease_seconds=600)
    )
    start = threading.Barrier(len(nodes))

    def leaser(creds: object) -> list[int]:
        got: list[int] = []
        start.wait()
        while True:
            leases = coordinator.lease(creds, 7)  # type: ignore[arg-type]
            if not leases:
                return got
            got.extend(le.chunk_id for le in leases)

    with ThreadPoolExecutor(len(nodes)) as pool:
        per_node = list(pool.map(leaser, nodes))
    everything = [c for got in per_node for c in got]
    assert len(everything) == 2400 and len(set(everything)) == 2400
    assert sum(1 for got in per_node if got) >= 8  # the work really was spread
    with read_session(postgres_db) as s:
        chunks = s.exec(select(SimChunk).where(SimChunk.job_id == job_id)).all()
        assert {c.status for c in chunks} == {ChunkStatus.LEASED.value}
        assert all(c.attempts == 1 for c in chunks)


def test_a_thousand_duplicate_completions_count_once(db: Engine, wowlab_hooks: Hooks) -> None:
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner)
    job_id = make_job(db, owner, wowlab_hooks, iterations=40, chunks=2)
    coordinator = Coordinator(
        db, hooks=wowlab_hooks, settings=TEST_SETTINGS.__class__(lease_seconds=600)
    )
    first, second = coordinator.lease(creds, 2)
    completion = Completion(first.chunk_id, first.lease_token, toy_result(first))
    outcomes: list[str] = []
    lock = threading.Lock()

    def send(batch: int) -> None:
        for o in coordinator.complete(creds, [completion] * batch):
            with lock:
                outcomes.append(o.outcome)

    # 200 in one batch (the largest allowed is 256), 800 more from 8 threads at once.
    send(200)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, [100] * 8))
    assert len(outcomes) == 1000
    assert outcomes.count(Outcome.ACCEPTED.value) == 1
    assert outcomes.count(Outcome.DUPLICATE.value) == 999
    job = _job(db, job_id)
    assert job.completed_iterations == 20 and job.status == JobStatus.RUNNING.value
    coordinator.complete(
        creds, [Completion(second.chunk_id, second.lease_token, toy_result(second))]
    )
    coordinator.settle()
    job = _job(db, job_id)
    assert job.completed_iterations == 40 and job.status == JobStatus.COMPLETED.value
    assert job.result["iterations"] == 40


@pytest.mark.postgres
def test_concurrent_duplicates_from_many_connections_on_postgres(
    postgres_db: Engine, wowlab_hooks: Hooks
) -> None:
    """The first result wins under a real race: 16 threads complete the same chunk at once."""
    owner = make_user(postgres_db, "owner")
    _, creds = make_node(postgres_db, owner)
    job_id = make_job(postgres_db, owner, wowlab_hooks, iterations=10, chunks=1)
    coordinator = Coordinator(
        postgres_db, hooks=wowlab_hooks, settings=TEST_SETTINGS.__class__(lease_seconds=600)
    )
    [lease] = coordinator.lease(creds, 1)
    completion = Completion(lease.chunk_id, lease.lease_token, toy_result(lease))
    barrier = threading.Barrier(16)

    def race(_: int) -> list[str]:
        barrier.wait()
        return [coordinator.complete(creds, [completion])[0].outcome for _ in range(20)]

    with ThreadPoolExecutor(16) as pool:
        outcomes = [o for batch in pool.map(race, range(16)) for o in batch]
    assert outcomes.count(Outcome.ACCEPTED.value) == 1 and len(outcomes) == 320
    assert coordinator.settle()
    job = _job(postgres_db, job_id)
    assert job.completed_iterations == 10 and job.status == JobStatus.COMPLETED.value


def test_lease_expiry_returns_chunks_and_repeated_expiry_fails_the_job(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner)
    job_id = make_job(db, owner, wowlab_hooks, iterations=10, chunks=1)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    for attempt in range(1, MAX_EXPIRATIONS + 1):
        [lease] = coordinator.lease(creds, 1)
        with write_session(db) as s:  # let the lease run out without waiting
            chunk = s.get(SimChunk, lease.chunk_id)
            assert chunk is not None and chunk.attempts == attempt
            chunk.lease_expires_at = utcnow() - timedelta(seconds=1)
            s.add(chunk)
            s.commit()
        coordinator.reap()
    job = _job(db, job_id)
    assert job.status == JobStatus.FAILED.value
    assert job.error is not None and f"timed out {MAX_EXPIRATIONS} times" in job.error


def test_job_without_eligible_node_stays_pending_and_says_why(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    owner = make_user(db, "owner")
    job_id = make_job(db, owner, wowlab_hooks, iterations=1000, chunks=None)
    job = _job(db, job_id)
    assert job.status == JobStatus.PENDING.value and job.status_reason == NO_NODE_REASON
    with read_session(db) as s:
        assert (
            sum(c.iterations for c in s.exec(select(SimChunk).where(SimChunk.job_id == job_id)))
            == 1000
        )
    _, creds = make_node(db, owner)  # a node arrives: the job starts and the reason goes
    Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS).lease(creds, 1)
    job = _job(db, job_id)
    assert job.status == JobStatus.RUNNING.value and job.status_reason is None


def test_silent_nodes_go_offline_and_stale_ones_are_deleted_keeping_history(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    owner = make_user(db, "owner")
    node, creds = make_node(db, owner)
    job_id = make_job(db, owner, wowlab_hooks, iterations=10, chunks=1)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    [lease] = coordinator.lease(creds, 1)
    coordinator.complete(creds, [Completion(lease.chunk_id, lease.lease_token, toy_result(lease))])
    with write_session(db) as s:
        assert (
            mark_offline_nodes(
                s, silent_for=timedelta(seconds=60), now=utcnow() + timedelta(minutes=5)
            )
            == 1
        )
        s.commit()
    with write_session(db) as s:
        assert delete_stale_nodes(s, days=30, now=utcnow() + timedelta(days=31)) == 1
        s.commit()
    with read_session(db) as s:
        assert s.get(Node, node.id) is None
        [chunk] = s.exec(select(SimChunk).where(SimChunk.job_id == job_id)).all()
        assert (
            chunk.status == ChunkStatus.COMPLETED.value
            and chunk.node_id is None
            and chunk.result is not None
        )
        assert s.get(User, owner.id) is not None


def test_the_merge_runs_after_the_completing_call_returned(
    db: Engine, wowlab_hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node that sends a job's last result gets its answer without waiting for the
    merge; the job is merged once, in the coordinator's finisher thread."""
    import wowlab_core.coordinator as coordinator_module

    owner = make_user(db, "owner")
    _, creds = make_node(db, owner, max_parallel=2)
    job_id = make_job(db, owner, wowlab_hooks, iterations=20, chunks=2)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=LONG_LEASES)
    release = threading.Event()
    merges: list[str] = []
    real_finalize = coordinator_module.finalize_job

    def slow_finalize(*args: object, **kwargs: object) -> bool:
        merges.append(threading.current_thread().name)
        assert release.wait(30)
        return real_finalize(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(coordinator_module, "finalize_job", slow_finalize)
    leases = coordinator.lease(creds, 2)
    [outcome] = coordinator.complete(
        creds, [Completion(leases[0].chunk_id, leases[0].lease_token, toy_result(leases[0]))]
    )
    assert outcome.outcome == Outcome.ACCEPTED.value and merges == []  # not done yet
    [outcome] = coordinator.complete(  # returns while the merge is held
        creds, [Completion(leases[1].chunk_id, leases[1].lease_token, toy_result(leases[1]))]
    )
    assert outcome.outcome == Outcome.ACCEPTED.value
    job = _job(db, job_id)
    assert job.status == JobStatus.RUNNING.value and job.completed_iterations == 20
    release.set()
    assert coordinator.settle(30)
    job = _job(db, job_id)
    assert job.status == JobStatus.COMPLETED.value and job.result["iterations"] == 20
    assert merges == ["wowlab-finisher"]


def test_two_nodes_finishing_a_job_at_once_merge_it_once(
    db: Engine, wowlab_hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wowlab_core.coordinator as coordinator_module

    owner = make_user(db, "owner")
    nodes = [make_node(db, owner, name=f"n{i}", max_parallel=1)[1] for i in range(2)]
    job_id = make_job(db, owner, wowlab_hooks, iterations=20, chunks=2)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=LONG_LEASES)
    merges: list[int] = []
    real_finalize = coordinator_module.finalize_job

    def counted(*args: object, **kwargs: object) -> bool:
        merges.append(1)
        return real_finalize(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(coordinator_module, "finalize_job", counted)
    leases = [coordinator.lease(creds, 1)[0] for creds in nodes]
    start = threading.Barrier(2)

    def send(i: int) -> str:
        start.wait()
        le = leases[i]
        [o] = coordinator.complete(
            nodes[i], [Completion(le.chunk_id, le.lease_token, toy_result(le))]
        )
        return o.outcome

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(send, [0, 1])) == [Outcome.ACCEPTED.value] * 2
    assert coordinator.settle(30)
    job = _job(db, job_id)
    assert job.status == JobStatus.COMPLETED.value and job.completed_iterations == 20
    assert merges == [1]


def test_a_job_whose_count_was_lost_is_merged_by_the_reaper(
    db: Engine, wowlab_hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that stopped between committing the last results and counting them
    leaves the job running with a short count: the reaper's sweep merges it, exactly."""
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner, max_parallel=2)
    job_id = make_job(db, owner, wowlab_hooks, iterations=20, chunks=2)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=LONG_LEASES)
    leases = coordinator.lease(creds, 2)
    with monkeypatch.context() as patch:
        patch.setattr(Coordinator, "_count", lambda self, progress, **_: None)  # the "crash"
        coordinator.complete(
            creds, [Completion(le.chunk_id, le.lease_token, toy_result(le)) for le in leases]
        )
    coordinator.reap()
    assert coordinator.settle(30)
    assert _job(db, job_id).status == JobStatus.RUNNING.value  # too recent to be sure yet
    with write_session(db) as s:
        for chunk in s.exec(select(SimChunk).where(SimChunk.job_id == job_id)).all():
            assert chunk.completed_at is not None
            chunk.completed_at -= timedelta(minutes=5)
            s.add(chunk)
        s.commit()
    fresh = Coordinator(db, hooks=wowlab_hooks, settings=LONG_LEASES)  # a restarted process
    fresh.reap()
    assert fresh.settle(30)
    job = _job(db, job_id)
    assert job.status == JobStatus.COMPLETED.value and job.completed_iterations == 20
    assert job.result["iterations"] == 20


def test_odd_batches_get_the_judged_answers_on_every_database(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    """What the one-statement path (PostgreSQL) must not change: a result with a count
    beyond the column's range is refused alone (not the whole call), and of two copies
    of a chunk the one with the lease's token is the one accepted."""
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner, max_parallel=2)
    job_id = make_job(db, owner, wowlab_hooks, iterations=20, chunks=2)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=LONG_LEASES)
    first, second = coordinator.lease(creds, 2)
    huge = dict(toy_result(first))
    huge.update(
        count=3_000_000_000, total=0, total_sq=0, minimum=0, maximum=0,
        histogram={"0": 3_000_000_000},
    )  # fmt: skip
    outcomes = coordinator.complete(
        creds,
        [
            Completion(first.chunk_id, first.lease_token, huge),
            Completion(second.chunk_id, "not-the-token", toy_result(second)),
            Completion(second.chunk_id, second.lease_token, toy_result(second)),
        ],
    )
    assert [o.outcome for o in outcomes] == [
        Outcome.REJECTED.value,
        Outcome.REJECTED.value,  # not this lease's token
        Outcome.ACCEPTED.value,
    ]
    assert _job(db, job_id).completed_iterations == 10
    [again] = coordinator.complete(
        creds, [Completion(first.chunk_id, first.lease_token, toy_result(first))]
    )
    assert again.outcome == Outcome.ACCEPTED.value
    assert coordinator.settle()
    job = _job(db, job_id)
    assert job.status == JobStatus.COMPLETED.value and job.completed_iterations == 20


def test_results_committed_before_a_cancel_still_count(
    db: Engine, wowlab_hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count comes after the results' commit: a cancel in between must not lose it."""
    from wowlab_core.job_states import cancel_job

    owner = make_user(db, "owner")
    _, creds = make_node(db, owner, max_parallel=2)
    job_id = make_job(db, owner, wowlab_hooks, iterations=20, chunks=2)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=LONG_LEASES)
    first, _ = coordinator.lease(creds, 2)
    real_count = Coordinator._count

    def cancel_then_count(self: Coordinator, progress: dict[int, int], **kwargs: Any) -> None:
        with write_session(db) as s:
            job = s.get(SimJob, job_id)
            assert job is not None
            cancel_job(s, job=job)
            s.commit()
        real_count(self, progress, **kwargs)

    monkeypatch.setattr(Coordinator, "_count", cancel_then_count)
    [outcome] = coordinator.complete(
        creds, [Completion(first.chunk_id, first.lease_token, toy_result(first))]
    )
    assert outcome.outcome == Outcome.ACCEPTED.value
    assert coordinator.settle()
    job = _job(db, job_id)
    assert job.status == JobStatus.CANCELLED.value and job.completed_iterations == 10


def test_one_completion_call_counts_the_chunks_of_several_jobs(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    """A node's results for two jobs in one call: each job counts its own, once, and both
    are merged (on PostgreSQL the counts go on the call's connection after its commit)."""
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner, max_parallel=4)
    jobs = [make_job(db, owner, wowlab_hooks, iterations=20, chunks=2) for _ in range(2)]
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=LONG_LEASES)
    leases = coordinator.lease(creds, 4)
    assert sorted({le.job_id for le in leases}) == sorted(jobs)
    outcomes = coordinator.complete(
        creds,
        [Completion(le.chunk_id, le.lease_token, toy_result(le), 0.5) for le in leases],
    )
    assert [o.outcome for o in outcomes] == [Outcome.ACCEPTED.value] * 4
    assert coordinator.settle()
    for job_id in jobs:
        job = _job(db, job_id)
        assert (job.status, job.completed_iterations) == (JobStatus.COMPLETED.value, 20)
    with read_session(db) as s:
        node = s.get(Node, creds.node_id)
        assert node is not None and node.status == "online"
        assert node.iterations_per_second == pytest.approx(40 / 2.0)  # 40 iterations in 2 s
