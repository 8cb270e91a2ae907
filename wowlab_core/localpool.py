"""Run a simulation end to end on this machine: the embedded default.

An embedded database (a temporary SQLite file unless a URL is given), the real
coordinator, and K local nodes that register, get claimed by a local user with the code
they show, and lease chunks like any remote node would. ``wowlab sim`` is a thin layer
over :func:`run_local_simulation`.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from sqlmodel import col, select

from wowlab_core.agent import AgentOptions, NodeAgent
from wowlab_core.cache import CacheSettings, MemoryDiskCache
from wowlab_core.coordinator import Coordinator, CoordinatorSettings
from wowlab_core.db import create_all, create_db_engine, read_session, write_session
from wowlab_core.jobs import DEFAULT_LIMITS, JobLimits, job_progress, submit_job
from wowlab_core.models import FINISHED_JOB_STATUSES, JobStatus, SimJob, User
from wowlab_core.nodes import claim_and_announce
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import ClaimStatus, NodeInfo
from wowlab_core.report import timing_section
from wowlab_core.transport_local import LocalTransport

log = logging.getLogger(__name__)

LOCAL_USER = "local"
MAX_LOCAL_NODES = 256


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running job."""

    completed_iterations: int
    total_iterations: int
    chunks_completed: int
    chunks_total: int
    nodes_working: int
    status: str


@dataclass(frozen=True)
class SimulationRun:
    """The outcome of a local simulation."""

    job_id: int
    status: str
    report: dict[str, Any] | None
    timing: dict[str, Any]
    error: str | None


def _local_user(db: Any) -> User:
    with write_session(db) as session:
        user = session.exec(select(User).where(col(User.username) == LOCAL_USER)).first()
        if user is None:
            user = User(username=LOCAL_USER, is_admin=True)
            session.add(user)
            session.commit()
        return user


def run_local_simulation(
    config: Any,
    *,
    hooks: Hooks,
    iterations: int,
    seed: int | None = None,
    nodes: int = 1,
    engine_name: str | None = None,
    chunk_size: int | None = None,
    chunks: int | None = None,
    target_error: float | None = None,
    database_url: str | None = None,
    limits: JobLimits = DEFAULT_LIMITS,
    on_progress: Callable[[Progress], None] | None = None,
    poll_seconds: float = 0.1,
) -> SimulationRun:
    """Submit ``config`` to an embedded pool of ``nodes`` local nodes and wait for the report.

    Raises the submission's errors (``ConfigInvalid``, ``InvalidRequest``,
    ``EngineUnavailable``) before any node starts; nothing is left behind then.
    """
    if isinstance(nodes, bool) or not isinstance(nodes, int) or not 1 <= nodes <= MAX_LOCAL_NODES:
        from wowlab_core.errors import InvalidRequest

        raise InvalidRequest(f"nodes must be between 1 and {MAX_LOCAL_NODES}", field="nodes")
    with tempfile.TemporaryDirectory(prefix="wowlab-sim-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'sim.db'}"
        db = create_db_engine(url)
        try:
            if database_url is None:
                create_all(db)
            return anyio.run(
                _run,
                db,
                config,
                hooks,
                dict(
                    iterations=iterations,
                    seed=seed,
                    nodes=nodes,
                    engine_name=engine_name,
                    chunk_size=chunk_size,
                    chunks=chunks,
                    target_error=target_error,
                    limits=limits,
                    on_progress=on_progress,
                    poll_seconds=poll_seconds,
                    cache_dir=Path(tmp) / "cache",
                ),
            )
        finally:
            db.dispose()
            # The job's events belong to the run: deliver them before returning.
            hooks.flush_events()


async def _run(db: Any, config: Any, hooks: Hooks, opts: dict[str, Any]) -> SimulationRun:
    user = _local_user(db)
    # Validate and store the job first: a bad config fails before any node starts.
    with write_session(db) as session:
        job = submit_job(
            session,
            user=user,
            config=config,
            iterations=opts["iterations"],
            engine_name=opts["engine_name"],
            seed=opts["seed"],
            hooks=hooks,
            chunk_size=opts["chunk_size"],
            chunks=opts["chunks"],
            target_error=opts["target_error"],
            limits=opts["limits"],
            local=True,
        )
        session.commit()
        job_id = job.id or 0
    coordinator = Coordinator(
        db, hooks=hooks, settings=CoordinatorSettings(reap_interval_seconds=0.5)
    )
    transport = LocalTransport(coordinator)
    cache = MemoryDiskCache(CacheSettings(directory=opts["cache_dir"]))
    started = time.perf_counter()

    claimed: list[str] = []

    def claim(status: ClaimStatus) -> None:
        # The local user claims each node with the code it shows, as a person would.
        claim_and_announce(db, user_id=user.id or 0, code=status.claim_code or "", hooks=hooks)
        claimed.append(status.claim_code or "")

    agents = [
        NodeAgent(
            transport,
            info=NodeInfo(name=f"local-{i + 1}", max_parallel=1, platform="embedded"),
            hooks=hooks,
            cache=cache,
            options=AgentOptions(
                heartbeat_seconds=5.0,
                idle_wait_seconds=0.5,
                claim_wait_seconds=0.2,
                allow_local_only_engines=True,  # the submitter's own machine
            ),
            on_claim_code=lambda status: claim(status),
        )
        for i in range(opts["nodes"])
    ]
    async with anyio.create_task_group() as tg:
        for agent in agents:
            tg.start_soon(agent.run)
        coordinator.notify_work()
        final = await _watch(db, job_id, opts["on_progress"], opts["poll_seconds"])
        # A tiny job can end before every node is up; let them all join the pool first,
        # so every node the user asked for was really claimed (and announced).
        with anyio.move_on_after(10):
            while len(claimed) < len(agents):
                await anyio.sleep(0.01)
        for agent in agents:
            agent.stop()
        # Wake the nodes' long polls now: a worker thread still waiting in one would keep the
        # process alive for its whole timeout after the report is printed.
        coordinator.notify_work()
    wall = time.perf_counter() - started
    report = final.result if final.status == JobStatus.COMPLETED.value else None
    return SimulationRun(
        job_id=job_id,
        status=final.status,
        report=report,
        timing=timing_section(report or {}, wall_seconds=wall),
        error=final.error,
    )


async def _watch(
    db: Any, job_id: int, on_progress: Callable[[Progress], None] | None, poll: float
) -> SimJob:
    def snapshot() -> tuple[SimJob, dict[str, int]]:
        with read_session(db) as session:
            job = session.get(SimJob, job_id)
            assert job is not None
            return job, job_progress(session, job=job)

    while True:
        job, progress = await anyio.to_thread.run_sync(snapshot)
        if on_progress is not None:
            on_progress(
                Progress(
                    completed_iterations=progress["completed_iterations"],
                    total_iterations=progress["total_iterations"],
                    chunks_completed=progress["chunks_completed"],
                    chunks_total=progress["chunks_total"],
                    nodes_working=progress["nodes_working"],
                    status=job.status,
                )
            )
        if job.status in FINISHED_JOB_STATUSES:
            return job
        await anyio.sleep(poll)


__all__ = ["LOCAL_USER", "Progress", "SimulationRun", "run_local_simulation"]
