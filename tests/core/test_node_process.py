"""A real node process (``wowlab node run``): killed mid-chunk, stopped gracefully, restarted.

The node runs the local transport against a SQLite file shared with the test, which acts
as the portal (claims the node, submits jobs) through the database.
"""

from __future__ import annotations

import json
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from wowlab_core.db import create_all, create_db_engine, read_session
from wowlab_core.localpool import run_local_simulation
from wowlab_core.models import ChunkStatus, JobStatus, Node, SimChunk, SimJob
from wowlab_core.nodes import claim_and_announce
from wowlab_core.plugins import Hooks
from wowlab_core.report import dumps_report
from wowlab_core.testing.processes import WowlabProcess, node_process

from .helpers import make_job, make_user

SLOW = {"base_dps": 2000, "spread": 500, "sleep_ms": 1500}
LEASE_SECONDS = 2.0


def local_node(
    db_url: str, settings_file: Path, name: str, lease_seconds: float = LEASE_SECONDS
) -> WowlabProcess:
    """``wowlab node run`` on the local transport, with short coordinator timings."""
    env = {"WOWLAB_LEASE_SECONDS": str(lease_seconds), "WOWLAB_HEARTBEAT_SECONDS": "0.5"}
    return node_process("local", db_url, settings_file, name, env=env)


@pytest.fixture
def shared_db(tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    url = f"sqlite:///{tmp_path / 'pool.db'}"
    engine = create_db_engine(url)
    create_all(engine)
    yield engine, url
    engine.dispose()


@pytest.fixture
def nodes() -> Iterator[list[WowlabProcess]]:
    started: list[WowlabProcess] = []
    yield started
    for node in started:
        node.kill()


def _wait_job(db: Engine, job_id: int, timeout: float = 90) -> SimJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with read_session(db) as s:
            job = s.get(SimJob, job_id)
            assert job is not None
            if job.status not in ("pending", "running"):
                return job
        time.sleep(0.1)
    raise AssertionError("job did not finish")


def _leased_chunk(db: Engine, job_id: int, timeout: float = 30) -> SimChunk:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with read_session(db) as s:
            chunk = s.exec(
                select(SimChunk).where(SimChunk.job_id == job_id, SimChunk.status == "leased")
            ).first()
            if chunk is not None:
                return chunk
        time.sleep(0.05)
    raise AssertionError("no chunk was leased")


def _report_text(job: SimJob) -> str:
    return dumps_report(job.result)


def test_node_killed_mid_chunk_its_chunk_is_reissued_and_the_report_is_unchanged(
    shared_db: tuple[Engine, str], nodes: list[WowlabProcess], tmp_path: Path, wowlab_hooks: Hooks
) -> None:
    db, url = shared_db
    owner = make_user(db, "owner")
    victim = local_node(url, tmp_path / "victim.json", "victim")
    nodes.append(victim)
    code = victim.claim_code()
    claim_and_announce(db, user_id=owner.id or 0, code=code)
    victim.wait_for("claimed by owner")
    job_id = make_job(db, owner, wowlab_hooks, iterations=600, chunks=3, seed=99, config=SLOW)
    chunk = _leased_chunk(db, job_id)
    time.sleep(0.3)  # well inside the 1.5 s chunk
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(10)
    with read_session(db) as s:
        held = s.get(SimChunk, chunk.id)
        assert held is not None and held.status == ChunkStatus.LEASED.value and held.result is None
    # A second node takes over once the victim's lease has run out.
    rescuer = local_node(url, tmp_path / "rescuer.json", "rescuer")
    nodes.append(rescuer)
    claim_and_announce(db, user_id=owner.id or 0, code=rescuer.claim_code())
    job = _wait_job(db, job_id)
    assert job.status == JobStatus.COMPLETED.value, job.error
    with read_session(db) as s:
        reissued = s.get(SimChunk, chunk.id)
        rescuer_node = s.exec(select(Node).where(Node.name == "rescuer")).one()
        # At least one more lease after the victim's ran out (more if a loaded machine
        # let a lease of the rescuer run out too).
        assert reissued is not None and reissued.attempts >= 2 and reissued.expirations >= 1
        assert reissued.node_id == rescuer_node.id
    # The same job, undisturbed, in one go: byte-identical report.
    undisturbed = run_local_simulation(
        SLOW | {"sleep_ms": 0},
        hooks=wowlab_hooks,
        iterations=600,
        seed=99,
        nodes=2,
        engine_name="toy",
        chunks=5,
    )
    disturbed = dict(job.result)
    expected = dict(undisturbed.report or {})
    assert disturbed.pop("config_hash") != expected.pop(
        "config_hash"
    )  # sleep_ms differs, nothing else
    assert dumps_report(disturbed) == dumps_report(expected)


def test_sigterm_finishes_the_running_chunk_then_exits(
    shared_db: tuple[Engine, str], nodes: list[WowlabProcess], tmp_path: Path, wowlab_hooks: Hooks
) -> None:
    db, url = shared_db
    owner = make_user(db, "owner")
    node = local_node(url, tmp_path / "node.json", "graceful")
    nodes.append(node)
    claim_and_announce(db, user_id=owner.id or 0, code=node.claim_code())
    job_id = make_job(db, owner, wowlab_hooks, iterations=300, chunks=3, config=SLOW)
    chunk = _leased_chunk(db, job_id)
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(30) == 0
    node.wait_for("node stopped")
    with read_session(db) as s:
        done = s.get(SimChunk, chunk.id)
        assert done is not None and done.status == ChunkStatus.COMPLETED.value
        others = s.exec(
            select(SimChunk).where(SimChunk.job_id == job_id, SimChunk.id != chunk.id)
        ).all()
        assert {c.status for c in others} == {
            ChunkStatus.PENDING.value
        }  # nothing taken after the signal
        assert s.exec(select(Node).where(Node.name == "graceful")).one().status == "offline"


def test_second_signal_hands_leases_back(
    shared_db: tuple[Engine, str], nodes: list[WowlabProcess], tmp_path: Path, wowlab_hooks: Hooks
) -> None:
    db, url = shared_db
    owner = make_user(db, "owner")
    # Long leases: the chunk can only be pending again because the node handed it back.
    node = local_node(url, tmp_path / "node.json", "impatient", lease_seconds=120)
    nodes.append(node)
    claim_and_announce(db, user_id=owner.id or 0, code=node.claim_code())
    job_id = make_job(
        db, owner, wowlab_hooks, iterations=100, chunks=1, config=SLOW | {"sleep_ms": 20_000}
    )
    chunk = _leased_chunk(db, job_id)
    node.proc.send_signal(signal.SIGINT)
    node.wait_for("stopping; finishing 1 running chunk")
    node.proc.send_signal(signal.SIGINT)
    assert node.proc.wait(30) == 0
    with read_session(db) as s:
        back = s.get(SimChunk, chunk.id)
        assert back is not None and back.status == ChunkStatus.PENDING.value and back.attempts == 0


def test_restarted_node_keeps_its_identity_and_secret_file_is_private(
    shared_db: tuple[Engine, str], nodes: list[WowlabProcess], tmp_path: Path
) -> None:
    db, url = shared_db
    owner = make_user(db, "owner")
    settings = tmp_path / "node.json"
    first = local_node(url, settings, "keeper")
    nodes.append(first)
    claim_and_announce(db, user_id=owner.id or 0, code=first.claim_code())
    first.wait_for("claimed by owner")
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(30) == 0
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    saved: dict[str, Any] = json.loads(settings.read_text())
    assert saved["node_id"] and len(saved["token"]) >= 40
    with read_session(db) as s:
        stored = s.get(Node, saved["node_id"])
        assert (
            stored is not None and saved["token"] not in stored.token_hash
        )  # only the hash is stored
    second = local_node(url, settings, "keeper")
    nodes.append(second)
    second.wait_for("claimed by owner")  # no new claim code: same node, same owner
    assert not any("claim code" in line for line in second.lines)
    with read_session(db) as s:
        assert len(s.exec(select(Node)).all()) == 1
