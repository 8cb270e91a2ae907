"""Result verification by exact replication: liars are caught, flagged and their results
discarded; honest nodes earn trust; the report equals an honest run's byte for byte."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from wowlab_core.access import set_access
from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session, write_session
from wowlab_core.leases import VERIFY_GRACE_SECONDS
from wowlab_core.localpool import run_local_simulation
from wowlab_core.models import (
    AccessType,
    ChunkStatus,
    JobStatus,
    Node,
    Notice,
    SimChunk,
    SimJob,
)
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Completion, Heartbeat, Lease, NodeCredentials, Outcome
from wowlab_core.report import dumps_report
from wowlab_core.testing.conformance import toy_result
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_core.verification import job_provenance

from .helpers import TOY, make_job, make_node, make_user

SETTINGS = replace(TEST_SETTINGS, lease_seconds=600.0, verify_rate=0.0)


def lie(lease: Lease) -> dict[str, Any]:
    """A self-consistent but wrong result: another seed's iterations."""
    return toy_result(replace(lease, seed=lease.seed + 1))


def online(coordinator: Coordinator, *nodes: NodeCredentials) -> None:
    """Nodes are online once heard of; a check is sampled only if a checker is online."""
    for creds in nodes:
        coordinator.heartbeat(creds, Heartbeat())


def share_publicly(db: Engine, node: Node) -> None:
    with write_session(db) as s:
        set_access(s, node=node, grants=[(AccessType.PUBLIC, None)])
        s.commit()


def complete(
    coordinator: Coordinator, creds: NodeCredentials, leases: list[Lease], *, liar: bool = False
) -> list[str]:
    outcomes = coordinator.complete(
        creds,
        [
            Completion(le.chunk_id, le.lease_token, lie(le) if liar else toy_result(le))
            for le in leases
        ],
    )
    coordinator.settle()  # a job is merged after the call that completed its last chunk
    return [o.outcome for o in outcomes]


def chunks_of(db: Engine, job_id: int) -> list[SimChunk]:
    with read_session(db) as s:
        return list(
            s.exec(
                select(SimChunk).where(col(SimChunk.job_id) == job_id).order_by(col(SimChunk.id))
            ).all()
        )


def get(db: Engine, model: Any, key: int) -> Any:
    with read_session(db) as s:
        return s.get(model, key)


def honest_report(iterations: int, chunks: int, seed: int = 1) -> str:
    run = run_local_simulation(
        TOY,
        hooks=_toy_hooks(),
        iterations=iterations,
        nodes=1,
        engine_name="toy",
        seed=seed,
        chunks=chunks,
    )
    assert run.report is not None
    return dumps_report(run.report)


def _toy_hooks() -> Hooks:
    from wowlab_core.plugins import build_registry
    from wowlab_core.testing.toy_engine import toy_engine_plugin

    registry = build_registry(load_entry_points=False)
    registry.pm.register(toy_engine_plugin, name="toy-engine")
    return Hooks(registry.pm)


def test_a_liar_is_caught_by_the_submitters_node_and_the_report_stays_exact(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    alice, mallory = make_user(db, "alice"), make_user(db, "mallory")
    own, own_creds = make_node(db, alice, name="alice-pc", max_parallel=4)
    liar, liar_creds = make_node(db, mallory, name="mallory-pc", max_parallel=4)
    share_publicly(db, liar)
    job_id = make_job(db, alice, wowlab_hooks, iterations=80, chunks=8, allow_public=True)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=SETTINGS)

    lies = coordinator.lease(liar_creds, 4)
    assert len(lies) == 4
    # Accepted, but the first result of a node for a user who does not own it waits for
    # a second run; the others count at once (the sample rate is 0 here).
    assert complete(coordinator, liar_creds, lies, liar=True) == ["accepted"] * 4
    statuses = [c.status for c in chunks_of(db, job_id)]
    assert statuses.count(ChunkStatus.VERIFY.value) == 1
    assert statuses.count(ChunkStatus.COMPLETED.value) == 3
    assert get(db, SimJob, job_id).completed_iterations == 30

    # Alice's own node takes the verification first (before any pending chunk).
    [check] = coordinator.lease(own_creds, 1)
    assert check.chunk_id == lies[0].chunk_id
    assert complete(coordinator, own_creds, [check]) == ["accepted"]

    flagged = get(db, Node, liar.id or 0)
    assert flagged.flagged_at is not None and flagged.trust_score == 0
    assert "did not match" in (flagged.flag_reason or "")
    # All of the liar's results in the job were discarded: only alice's check counts.
    job = get(db, SimJob, job_id)
    assert job.completed_iterations == 10
    chunks = {c.id: c for c in chunks_of(db, job_id)}
    assert chunks[check.chunk_id].computed_by == own.id
    for le in lies[1:]:
        assert chunks[le.chunk_id].status == ChunkStatus.PENDING.value
        assert chunks[le.chunk_id].result is None
    # The flagged node runs nobody's jobs but its owner's, and its results are refused.
    assert coordinator.lease(liar_creds, 4) == []
    late = complete(coordinator, liar_creds, lies[1:2], liar=True)
    assert late == [Outcome.REJECTED.value]
    # Both people were told.
    with read_session(db) as s:
        notices = {(n.user_id, n.kind) for n in s.exec(select(Notice)).all()}
    assert notices == {(mallory.id, "node-flagged"), (alice.id, "wrong-result")}

    # Alice's node finishes the job: the report is the honest one, byte for byte.
    while True:
        leases = coordinator.lease(own_creds, 4)
        if not leases:
            break
        complete(coordinator, own_creds, leases)
    job = get(db, SimJob, job_id)
    assert job.status == JobStatus.COMPLETED.value
    assert dumps_report(job.result) == honest_report(80, 8)


def test_a_matching_run_confirms_a_result_and_builds_trust(db: Engine, wowlab_hooks: Hooks) -> None:
    alice, bob = make_user(db, "alice"), make_user(db, "bob")
    own, own_creds = make_node(db, alice, name="alice-pc")
    helper, helper_creds = make_node(db, bob, name="bob-pc")
    share_publicly(db, helper)
    job_id = make_job(db, alice, wowlab_hooks, iterations=40, chunks=4, allow_public=True)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=SETTINGS)
    first = coordinator.lease(helper_creds, 2)
    complete(coordinator, helper_creds, first)
    # The helper cannot verify its own result, not even with a second node of bob's.
    _, bobs_other = make_node(db, bob, name="bob-laptop")
    assert all(le.chunk_id != first[0].chunk_id for le in coordinator.lease(bobs_other, 2))
    [check] = [le for le in coordinator.lease(own_creds, 1)]
    assert check.chunk_id == first[0].chunk_id
    complete(coordinator, own_creds, [check])
    chunk = {c.id: c for c in chunks_of(db, job_id)}[check.chunk_id]
    assert chunk.status == ChunkStatus.COMPLETED.value
    assert chunk.computed_by == helper.id and chunk.verified_by == own.id
    assert chunk.verify_state == "verified"
    assert get(db, Node, helper.id or 0).trust_score == 1
    with read_session(db) as s:
        provenance = {p["name"]: p for p in job_provenance(s, job_id=job_id)}
    assert provenance["bob-pc"]["verified_chunks"] == 1
    assert provenance["bob-pc"]["chunks"] == 2 and provenance["bob-pc"]["owner"] == "bob"


def test_the_submitters_own_nodes_are_never_checked(db: Engine, wowlab_hooks: Hooks) -> None:
    alice = make_user(db, "alice")
    _, creds = make_node(db, alice, max_parallel=4)
    job_id = make_job(db, alice, wowlab_hooks, iterations=40, chunks=4)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=replace(SETTINGS, verify_rate=1.0))
    complete(coordinator, creds, coordinator.lease(creds, 4))
    assert {c.status for c in chunks_of(db, job_id)} == {ChunkStatus.COMPLETED.value}
    assert get(db, SimJob, job_id).status == JobStatus.COMPLETED.value


def past_grace(db: Engine, chunk_id: int) -> None:
    """Strangers' nodes wait a grace period before checking a result: let it pass."""
    with write_session(db) as s:
        chunk = s.get(SimChunk, chunk_id)
        assert chunk is not None and chunk.completed_at is not None
        chunk.completed_at -= timedelta(seconds=VERIFY_GRACE_SECONDS + 1)
        s.add(chunk)
        s.commit()


def test_a_disagreement_between_strangers_is_decided_by_a_third_node(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    """The first run is honest, the check lies: a third node sides with the first."""
    users = [make_user(db, n) for n in ("alice", "honest", "liar", "judge")]
    nodes = {u.username: make_node(db, u, name=f"{u.username}-pc") for u in users[1:]}
    for node, _ in nodes.values():
        share_publicly(db, node)
    job_id = make_job(db, users[0], wowlab_hooks, iterations=10, chunks=1, allow_public=True)
    coordinator = Coordinator(
        db, hooks=wowlab_hooks, settings=replace(SETTINGS, min_lease_deadline_seconds=600)
    )
    online(coordinator, *(creds for _, creds in nodes.values()))
    [run] = coordinator.lease(nodes["honest"][1], 1)
    complete(coordinator, nodes["honest"][1], [run])
    past_grace(db, run.chunk_id)
    [check] = coordinator.lease(nodes["liar"][1], 1)
    complete(coordinator, nodes["liar"][1], [check], liar=True)
    chunk = chunks_of(db, job_id)[0]
    assert chunk.status == ChunkStatus.VERIFY.value and chunk.verify_state == "tiebreak"
    assert chunk.alt_node_id == nodes["liar"][0].id
    assert coordinator.lease(nodes["judge"][1], 1) == []  # the grace period starts again
    past_grace(db, run.chunk_id)
    [judge] = coordinator.lease(nodes["judge"][1], 1)
    complete(coordinator, nodes["judge"][1], [judge])
    chunk = chunks_of(db, job_id)[0]
    assert chunk.status == ChunkStatus.COMPLETED.value
    assert chunk.computed_by == nodes["honest"][0].id
    assert chunk.verified_by == nodes["judge"][0].id
    assert get(db, Node, nodes["liar"][0].id or 0).flagged_at is not None
    assert get(db, Node, nodes["honest"][0].id or 0).flagged_at is None
    assert dumps_report(get(db, SimJob, job_id).result) == honest_report(10, 1)


def test_the_sample_rate_is_higher_until_a_node_is_trusted(db: Engine, wowlab_hooks: Hooks) -> None:
    alice, bob = make_user(db, "alice"), make_user(db, "bob")
    helper, creds = make_node(db, bob, max_parallel=200)
    _, checker = make_node(db, alice, name="alice-pc")
    share_publicly(db, helper)
    job_id = make_job(db, alice, wowlab_hooks, iterations=2000, chunks=200, allow_public=True)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=replace(SETTINGS, verify_rate=0.05))
    online(coordinator, checker)
    coordinator.verify_random = random.Random(7).random
    complete(coordinator, creds, coordinator.lease(creds, 200))
    sampled = sum(c.status == ChunkStatus.VERIFY.value for c in chunks_of(db, job_id))
    # The first chunk, then 20 % of 199 (an untrusted node): binomial sd ~5.6.
    assert 1 + 199 * 0.2 - 4 * 5.6 <= sampled <= 1 + 199 * 0.2 + 4 * 5.6
    with write_session(db) as s:
        node = s.get(Node, helper.id)
        assert node is not None
        node.trust_score = 10
        s.add(node)
        s.commit()
    job2 = make_job(db, alice, wowlab_hooks, iterations=2000, chunks=200, allow_public=True)
    complete(coordinator, creds, coordinator.lease(creds, 200))
    sampled = sum(c.status == ChunkStatus.VERIFY.value for c in chunks_of(db, job2))
    # A trusted node: the configured 5 % (sd ~3.1); its first chunk for alice is past.
    assert 199 * 0.05 - 4 * 3.1 <= sampled <= 200 * 0.05 + 4 * 3.1


def test_flagged_nodes_still_serve_their_owner(db: Engine, wowlab_hooks: Hooks) -> None:
    mallory = make_user(db, "mallory")
    node, creds = make_node(db, mallory)
    with write_session(db) as s:
        row = s.get(Node, node.id)
        assert row is not None
        row.flagged_at = row.created_at
        s.add(row)
        s.commit()
    job_id = make_job(db, mallory, wowlab_hooks, iterations=10, chunks=1)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=SETTINGS)
    leases = coordinator.lease(creds, 1)
    assert [le.job_id for le in leases] == [job_id]
    assert complete(coordinator, creds, leases) == ["accepted"]
    # ... but not anybody else's, even a job that opts in to public nodes.
    share_publicly(db, node)
    bob = make_user(db, "bob")
    make_job(db, bob, wowlab_hooks, iterations=10, chunks=1, allow_public=True)
    assert coordinator.lease(creds, 1) == []


def test_a_job_with_no_possible_checker_runs_unchecked_and_says_so(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    """bob has no node of his own: his job runs on alice's shared node, nothing can check
    it, and it must not wait for a check (its provenance shows it is unchecked)."""
    alice, bob = make_user(db, "alice"), make_user(db, "bob")
    node, creds = make_node(db, alice, name="alice-pc", max_parallel=4)
    share_publicly(db, node)
    job_id = make_job(db, bob, wowlab_hooks, iterations=40, chunks=4, allow_public=True)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=replace(SETTINGS, verify_rate=1.0))
    assert complete(coordinator, creds, coordinator.lease(creds, 4)) == ["accepted"] * 4
    job = get(db, SimJob, job_id)
    assert job.status == JobStatus.COMPLETED.value
    with read_session(db) as s:
        [helper] = job_provenance(s, job_id=job_id)
    assert helper["verified_chunks"] == 0 and helper["chunks"] == 4
    from wowlab_core.verification import unverified_share

    assert unverified_share([helper], "bob") == 1.0


def test_a_check_nobody_takes_counts_unchecked_after_the_timeout(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    alice, bob = make_user(db, "alice"), make_user(db, "bob")
    own, own_creds = make_node(db, alice, name="alice-pc")
    helper, creds = make_node(db, bob, name="bob-pc", max_parallel=4)
    share_publicly(db, helper)
    job_id = make_job(db, alice, wowlab_hooks, iterations=40, chunks=4, allow_public=True)
    settings = replace(SETTINGS, verify_timeout_seconds=0.5, offline_after_seconds=600)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=settings)
    online(coordinator, own_creds)  # a checker is online when bob's results arrive
    complete(coordinator, creds, coordinator.lease(creds, 4))
    assert get(db, SimJob, job_id).status == JobStatus.RUNNING.value  # one check is due
    # alice's node goes away before it checks anything.
    with write_session(db) as s:
        row = s.get(Node, own.id)
        assert row is not None
        row.status = "offline"
        s.add(row)
        s.commit()
    time.sleep(0.6)
    coordinator.reap()
    coordinator.settle()
    job = get(db, SimJob, job_id)
    assert job.status == JobStatus.COMPLETED.value
    assert dumps_report(job.result) == honest_report(40, 4)
