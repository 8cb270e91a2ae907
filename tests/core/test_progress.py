"""A job's progress within running chunks, and what it is doing said in words (why it
waits, on how many nodes it runs, when it is finishing)."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session, write_session
from wowlab_core.models import ChunkStatus, Node, NodeStatus, SimChunk, SimJob
from wowlab_core.plugins import Hooks
from wowlab_core.progress import in_chunk_iterations, job_progress, job_state
from wowlab_core.protocol import Completion, Heartbeat, RunningChunk
from wowlab_core.testing.conformance import toy_result
from wowlab_core.testing.plugin import TEST_SETTINGS

from .helpers import make_job, make_node, make_user

LONG = replace(TEST_SETTINGS, lease_seconds=600.0, verify_rate=0.0)


def _state(db: Engine, job_id: int) -> tuple[dict[str, int], str, str, str | None]:
    with read_session(db) as s:
        job = s.get(SimJob, job_id)
        assert job is not None
        progress = job_progress(s, job=job)
        state = job_state(s, job=job, progress=progress)
        return progress, state.state, state.text, state.waiting_reason


def test_progress_counts_iterations_within_running_chunks(db: Engine, wowlab_hooks: Hooks) -> None:
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner, max_parallel=2)
    job_id = make_job(db, owner, wowlab_hooks, iterations=400, chunks=4)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=LONG)
    first, second = coordinator.lease(creds, 2)
    coordinator.heartbeat(
        creds,
        Heartbeat(
            running=[
                RunningChunk(first.chunk_id, first.lease_token, 37),
                RunningChunk(second.chunk_id, second.lease_token, 5_000),  # clamped to 100
            ]
        ),
    )
    progress, state, text, reason = _state(db, job_id)
    assert progress["completed_iterations"] == 137 and progress["counted_iterations"] == 0
    assert (state, text, reason) == ("running", "running on 1 node", None)
    # A finished chunk moves from in-chunk progress to the counted iterations: no double count.
    coordinator.complete(creds, [Completion(first.chunk_id, first.lease_token, toy_result(first))])
    progress, *_ = _state(db, job_id)
    assert progress["counted_iterations"] == 100
    assert progress["completed_iterations"] == 200  # 100 counted + the other chunk's 100
    with read_session(db) as s:
        assert in_chunk_iterations(s, job_ids=[job_id, 0, 999]) == {job_id: 100}


def test_a_chunk_waiting_for_its_check_counts_as_done_and_the_job_is_finishing(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    owner = make_user(db, "owner")
    make_node(db, owner)
    job_id = make_job(db, owner, wowlab_hooks, iterations=100, chunks=1)
    with write_session(db) as s:  # computed once, a second node's run is due
        s.execute(
            sa.update(SimChunk)
            .where(col(SimChunk.job_id) == job_id)
            .values(status=ChunkStatus.VERIFY.value, verify_state="pending")
        )
        s.execute(sa.update(SimJob).where(col(SimJob.id) == job_id).values(status="running"))
        s.commit()
    progress, state, text, _ = _state(db, job_id)
    assert progress["completed_iterations"] == 100 and progress["counted_iterations"] == 0
    assert state == "finishing" and "second node" in text


def _set_nodes(db: Engine, **values: object) -> None:
    with write_session(db) as s:
        s.execute(sa.update(Node).values(**values))
        s.commit()


def test_a_waiting_job_says_why(db: Engine, wowlab_hooks: Hooks) -> None:
    owner = make_user(db, "owner")
    stranger = make_user(db, "stranger")
    make_node(db, stranger, name="not-shared")  # online, but not usable by owner
    _set_nodes(db, status=NodeStatus.ONLINE.value)
    job_id = make_job(db, owner, wowlab_hooks, iterations=100, chunks=2)
    *_, reason = _state(db, job_id)
    assert reason == "no node you can use is online"

    node, creds = make_node(db, owner, name="mine", max_parallel=1)
    _set_nodes(db, status=NodeStatus.ONLINE.value, engines={"numba": "9.9"})
    _, state, text, reason = _state(db, job_id)
    assert state == "waiting"
    assert reason == "1 node you can use is online, but none runs the toy engine (version 1)"
    assert text == f"waiting for a node: {reason}"

    _set_nodes(db, engines=None)
    *_, reason = _state(db, job_id)
    assert reason == "a free node should pick it up within seconds"

    # The node's one worker runs another job of the owner's: this one waits for it.
    other_job = make_job(db, owner, wowlab_hooks, iterations=10, chunks=1)
    with write_session(db) as s:
        s.execute(
            sa.update(SimChunk)
            .where(col(SimChunk.job_id) == other_job)
            .values(status=ChunkStatus.LEASED.value, node_id=node.id)
        )
        s.commit()
    *_, reason = _state(db, job_id)
    assert reason == "the one node you can use is busy with other work"

    with write_session(db) as s:
        job = s.get(SimJob, job_id)
        assert job is not None
        job.own_nodes_only = True
        s.add(job)
        s.execute(sa.update(Node).where(col(Node.id) == node.id).values(status="offline"))
        s.commit()
    *_, reason = _state(db, job_id)
    assert reason == "none of your own nodes is online (this job runs only on yours)"
    assert creds.node_id == node.id
