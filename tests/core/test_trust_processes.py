"""Trust with real node processes: a lying node among honest ones, and nodes and the
database killed and restarted in the middle of a job.

Nodes run ``wowlab node run --transport local`` against a database shared with the test,
which plays the portal (claims nodes, shares them, submits jobs) through the database.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from wowlab_core.access import set_access
from wowlab_core.db import create_all, create_db_engine, read_session, write_session
from wowlab_core.localpool import run_local_simulation
from wowlab_core.models import AccessType, ChunkLease, JobStatus, Node, Notice, SimChunk, SimJob
from wowlab_core.nodes import claim_and_announce
from wowlab_core.plugins import Hooks
from wowlab_core.report import dumps_report
from wowlab_core.testing.private_postgres import PrivatePostgres
from wowlab_core.testing.processes import WowlabProcess, node_process

from .helpers import make_job, make_user

LIAR = [str(Path(__file__).with_name("liar_node.py"))]
pytestmark = pytest.mark.slow


def node(
    url: str, tmp: Path, name: str, *, lease: float, launcher: list[str] | None = None, **env: str
) -> WowlabProcess:
    return node_process(
        "local",
        url,
        tmp / f"{name}.json",
        name,
        max_parallel=1,
        env={"WOWLAB_LEASE_SECONDS": str(lease), "WOWLAB_HEARTBEAT_SECONDS": "0.5", **env},
        launcher=launcher,
    )


@pytest.fixture
def processes() -> Iterator[list[WowlabProcess]]:
    started: list[WowlabProcess] = []
    yield started
    for proc in started:
        proc.kill()


def join(db: Engine, proc: WowlabProcess, owner_id: int, *, public: bool = False) -> int:
    """Claim the node a process shows, optionally share it with everyone; its id."""
    node_row = claim_and_announce(db, user_id=owner_id, code=proc.claim_code())
    if public:
        with write_session(db) as s:
            set_access(s, node=node_row, grants=[(AccessType.PUBLIC, None)])
            s.commit()
    return node_row.id or 0


def wait_job(db: Engine, job_id: int, timeout: float = 120) -> SimJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with read_session(db) as s:
                job = s.get(SimJob, job_id)
                assert job is not None
                if job.status not in ("pending", "running"):
                    return job
        except sa.exc.OperationalError:  # the database is restarting
            pass
        time.sleep(0.1)
    raise AssertionError("the job did not finish")


def undisturbed_report(hooks: Hooks, config: dict[str, Any], iterations: int, seed: int) -> str:
    run = run_local_simulation(
        config | {"sleep_ms": 0},
        hooks=hooks,
        iterations=iterations,
        seed=seed,
        nodes=1,
        engine_name="toy",
        chunks=3,
    )
    report = dict(run.report or {})
    report.pop("config_hash")  # sleep_ms differs, nothing else
    return dumps_report(report)


def without_config_hash(report: dict[str, Any]) -> str:
    report = dict(report)
    report.pop("config_hash")
    return dumps_report(report)


def test_a_lying_node_process_is_caught_and_the_report_is_exact(
    tmp_path: Path, processes: list[WowlabProcess], wowlab_hooks: Hooks
) -> None:
    url = f"sqlite:///{tmp_path / 'pool.db'}"
    db = create_db_engine(url)
    create_all(db)
    alice, bob, mallory = (make_user(db, n) for n in ("alice", "bob", "mallory"))
    env = {"WOWLAB_VERIFY_RATE": "0"}  # only the first result of each node is checked
    own = node(url, tmp_path, "alice-pc", lease=30, **env)
    honest = node(url, tmp_path, "bob-pc", lease=30, **env)
    liar = node(url, tmp_path, "mallory-pc", lease=30, launcher=LIAR, **env)
    processes += [own, honest, liar]
    join(db, own, alice.id or 0)
    join(db, honest, bob.id or 0, public=True)
    liar_id = join(db, liar, mallory.id or 0, public=True)
    for proc in processes:
        proc.wait_for("claimed by")
    config = {"base_dps": 3000, "spread": 700, "sleep_ms": 150}
    job_id = make_job(
        db, alice, wowlab_hooks, iterations=600, chunks=30, seed=5, config=config,
        allow_public=True,
    )  # fmt: skip
    job = wait_job(db, job_id)
    assert job.status == JobStatus.COMPLETED.value, job.error
    assert without_config_hash(job.result) == undisturbed_report(wowlab_hooks, config, 600, 5)
    with read_session(db) as s:
        flagged = s.get(Node, liar_id)
        assert flagged is not None and flagged.flagged_at is not None
        assert {n.flagged_at is None for n in s.exec(select(Node)).all()} == {True, False}
        # Each detection costs at most one extra run: every lease is a chunk's one run,
        # a run of the liar's (all redone), or the first check of one of the two
        # strangers' nodes.
        leases = s.exec(select(ChunkLease)).all()
        chunks = s.exec(select(SimChunk).where(col(SimChunk.job_id) == job_id)).all()
        liar_runs = sum(le.node_id == liar_id for le in leases)
        assert liar_runs >= 1, "the liar never got to lie: the test proves nothing"
        extra = len(leases) - len(chunks) - liar_runs
        assert 1 <= extra <= 2, extra
        assert all(c.computed_by != liar_id for c in chunks)
        kinds = {(n.user_id, n.kind) for n in s.exec(select(Notice)).all()}
        assert (mallory.id, "node-flagged") in kinds and (alice.id, "wrong-result") in kinds
    db.dispose()


def test_nodes_and_the_database_restarted_mid_job_the_job_still_ends_exactly(
    tmp_path: Path, processes: list[WowlabProcess], wowlab_hooks: Hooks
) -> None:
    """A node SIGKILLed and restarted under its own identity while it holds a lease, then
    PostgreSQL restarted in immediate mode while leases are being taken: the job ends
    within two lease periods of the last fault, with the undisturbed report."""
    lease = 20.0  # a restarted process on a loaded CI machine can take several seconds
    server = PrivatePostgres()
    try:
        server.start()
        url = server.url
        db = create_db_engine(url)
        create_all(db)
        owner = make_user(db, "owner")
        a = node(url, tmp_path, "a", lease=lease)
        b = node(url, tmp_path, "b", lease=lease)
        processes += [a, b]
        a_id = join(db, a, owner.id or 0)
        join(db, b, owner.id or 0)
        a.wait_for("claimed by")
        b.wait_for("claimed by")
        config = {"base_dps": 2500, "spread": 400, "sleep_ms": 400}
        job_id = make_job(db, owner, wowlab_hooks, iterations=720, chunks=24, seed=3, config=config)

        # Fault 1: a is killed while it holds a lease, and restarted as the same node.
        held = wait_for_lease(db, job_id, a_id)
        with read_session(db) as s:
            old_token = (s.get(SimChunk, held) or SimChunk()).lease_token_hash
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        restarted = node(url, tmp_path, "a", lease=lease)
        processes.append(restarted)
        restarted.wait_for("claimed by")
        # Its first heartbeat hands the orphan back at once: the chunk does not wait for
        # its lease to run out.
        deadline = time.monotonic() + lease / 2
        while True:
            with read_session(db) as s:
                chunk = s.get(SimChunk, held)
                assert chunk is not None
            if chunk.lease_token_hash != old_token:
                break
            assert time.monotonic() < deadline, "the restarted node kept its old lease"
            time.sleep(0.05)
        assert chunk.expirations == 0

        # Fault 2: the database crashes while the nodes keep leasing.
        wait_progress(db, job_id, 0.6)
        server.stop("immediate")
        time.sleep(1.0)
        server.start()
        last_fault = time.monotonic()
        job = wait_job(db, job_id)
        took = time.monotonic() - last_fault
        assert job.status == JobStatus.COMPLETED.value, job.error
        assert took <= 2 * lease, f"the job ended {took:.1f} s after the last fault"
        assert job.completed_iterations == 720  # every chunk counted once
        assert without_config_hash(job.result) == undisturbed_report(wowlab_hooks, config, 720, 3)
        db.dispose()
    finally:
        for proc in processes:
            proc.kill()
        server.close()


def wait_for_lease(db: Engine, job_id: int, node_id: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with read_session(db) as s:
            chunk = s.exec(
                select(SimChunk).where(
                    col(SimChunk.job_id) == job_id,
                    col(SimChunk.status) == "leased",
                    col(SimChunk.node_id) == node_id,
                )
            ).first()
            if chunk is not None and chunk.id is not None:
                return chunk.id
        time.sleep(0.05)
    raise AssertionError("the node never leased a chunk")


def wait_progress(db: Engine, job_id: int, share: float, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with read_session(db) as s:
            job = s.get(SimJob, job_id)
            assert job is not None
            if job.completed_iterations >= share * job.total_iterations:
                return
        time.sleep(0.05)
    raise AssertionError(f"the job never reached {share:.0%}")
