"""A real node process (``wowlab node run``) protects its machine: a cancelled job's chunk
stops computing within a second of the node hearing of it, and a chunk over budget is
reported as such and the job still completes with the undisturbed report."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from wowlab_core.db import create_all, create_db_engine, read_session, write_session
from wowlab_core.localpool import run_local_simulation
from wowlab_core.models import JobStatus, SimChunk, SimJob
from wowlab_core.nodes import claim_and_announce
from wowlab_core.plugins import Hooks, build_registry
from wowlab_core.report import dumps_report
from wowlab_core.scheduler import cancel_job
from wowlab_core.testing.processes import WowlabProcess, node_process

from .helpers import make_job, make_user

HEARTBEAT_SECONDS = 0.5
#: ~0.14 s per iteration on the compiled engine (~1,700x fire_mage): valid, yet expensive.
SLOW_AOE = json.loads((Path(__file__).parents[1] / "engine" / "slow_aoe.json").read_text())


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def start_node(url: str, tmp_path: Path, *args: str) -> WowlabProcess:
    """``wowlab node run`` on the local transport, heartbeats every 0.5 s."""
    env = {"WOWLAB_LEASE_SECONDS": "60", "WOWLAB_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS)}
    return node_process("local", url, tmp_path / "node.json", "volunteer", env=env, args=args)


def _wait(check: object, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU time from /proc")
def test_cancelling_a_job_stops_the_nodes_chunk_within_a_second(
    shared_db: tuple[Engine, str], nodes: list[WowlabProcess], tmp_path: Path
) -> None:
    db, url = shared_db
    hooks = Hooks(build_registry().pm)  # with the compiled engine
    owner = make_user(db, "owner")
    node = start_node(url, tmp_path)
    nodes.append(node)
    claim_and_announce(db, user_id=owner.id or 0, code=node.claim_code())
    node.wait_for("claimed by owner")
    # 300 iterations of ~0.14 s in one chunk: ~40 s of work unless it is stopped.
    job_id = make_job(
        db, owner, hooks, iterations=300, chunks=1, config=SLOW_AOE, engine_name="numba"
    )
    pid = node.proc.pid

    def computing() -> bool:  # busy over 0.5 s: the engine runs (shared cores: not a full one)
        before = cpu_seconds(pid)
        time.sleep(0.5)
        return cpu_seconds(pid) - before > 0.15

    node.wait_for(r"chunk \d+ started", timeout=120)  # leased and prepared
    _wait(computing, 120)
    with write_session(db) as s:
        job = s.get(SimJob, job_id)
        assert job is not None
        cancel_job(s, job=job)
        s.commit()
    cancelled_at = time.monotonic()
    node.wait_for(r"chunk \d+ cancelled", timeout=10)
    seen_at = time.monotonic()
    # Heard of at the next heartbeat, stopped within 1 s of that.
    assert seen_at - cancelled_at < HEARTBEAT_SECONDS + 1.0 + 0.3  # + output polling
    before = cpu_seconds(pid)
    time.sleep(1.0)
    assert cpu_seconds(pid) - before < 0.3  # no longer computing
    with read_session(db) as s:
        [chunk] = s.exec(select(SimChunk).where(SimChunk.job_id == job_id)).all()
        assert chunk.result is None and chunk.failures == 0


def test_a_chunk_over_budget_is_reported_and_the_job_completes(
    shared_db: tuple[Engine, str], nodes: list[WowlabProcess], tmp_path: Path, wowlab_hooks: Hooks
) -> None:
    db, url = shared_db
    owner = make_user(db, "owner")
    # The volunteer caps a chunk at 1 s; the one chunk of this job takes ~4 s.
    node = start_node(url, tmp_path, "--max-chunk-seconds", "1")
    nodes.append(node)
    claim_and_announce(db, user_id=owner.id or 0, code=node.claim_code())
    config = {"base_dps": 1800, "spread": 500, "iteration_ms": 10}
    job_id = make_job(db, owner, wowlab_hooks, iterations=400, chunks=1, seed=21, config=config)

    def finished() -> bool:
        with read_session(db) as s:
            job = s.get(SimJob, job_id)
            return job is not None and job.status not in ("pending", "running")

    _wait(finished)
    node.wait_for(r"chunk \d+ over budget: stopped after 1\.0 s \(\d+ of 400 iterations\)")
    with read_session(db) as s:
        job = s.get(SimJob, job_id)
        assert job is not None and job.status == JobStatus.COMPLETED.value, job.error
        chunks = s.exec(select(SimChunk).where(SimChunk.job_id == job_id)).all()
    assert len(chunks) > 1 and all(c.failures == 0 for c in chunks)
    assert sum(c.iterations for c in chunks) == 400
    undisturbed = run_local_simulation(
        config | {"iteration_ms": 0}, hooks=wowlab_hooks, iterations=400, seed=21, engine_name="toy"
    )
    report, expected = dict(job.result), dict(undisturbed.report or {})
    assert report.pop("config_hash") != expected.pop("config_hash")  # iteration_ms differs
    assert dumps_report(report) == dumps_report(expected)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-chunk-seconds", "0"), "--max-chunk-seconds must be between 0.1 and 86400"),
        (("--memory-cap-mb", "10"), "--memory-cap-mb must be 0 (no cap) or at least 64"),
    ],
)
def test_bad_node_limits_are_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    node = start_node(f"sqlite:///{tmp_path / 'pool.db'}", tmp_path, *args)
    assert node.proc.wait(60) != 0
    node.wait_for(re.escape(message))
    assert "Traceback" not in node.output
