"""End to end: a job over the supabase transport (real engine, nodes through the gateway,
the finisher woken by NOTIFY) gives a report byte-identical to ``wowlab sim``'s."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy.engine import Engine

from wowlab_core.agent import AgentOptions, NodeAgent
from wowlab_core.cache import CacheSettings, MemoryDiskCache
from wowlab_core.db import read_session, write_session
from wowlab_core.jobs import submit_job
from wowlab_core.models import JobStatus, SimJob, User
from wowlab_core.nodes import claim_and_announce
from wowlab_core.plugins import get_hooks
from wowlab_core.protocol import NodeInfo
from wowlab_core.report import dumps_report
from wowlab_transport_supabase.client import SupabaseTransport
from wowlab_transport_supabase.finisher import Finisher
from wowlab_transport_supabase.testing import jwt
from wowlab_transport_supabase.testing.gateway import RpcGateway

pytestmark = pytest.mark.anyio

EXAMPLE = "fire_mage"
ITERATIONS = 300
SEED = 11
ENGINE = "numba"


def _sim_report() -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "wowlab_core",
            "sim",
            EXAMPLE,
            "-n",
            str(ITERATIONS),
            "--seed",
            str(SEED),
            "--engine",
            ENGINE,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    report.pop("timing")
    return report


def _example_config() -> Any:
    import wowlab_engine

    path = Path(wowlab_engine.__file__).parent / "examples" / f"{EXAMPLE}.json"
    return json.loads(path.read_text())


async def test_a_job_over_supabase_reports_what_wowlab_sim_reports(
    supabase_db: Engine, gateway: RpcGateway, tmp_path: Path
) -> None:
    expected = await anyio.to_thread.run_sync(_sim_report)
    hooks = get_hooks()
    with write_session(supabase_db) as s:
        user = User(username="owner")
        s.add(user)
        s.commit()
        user_id = user.id or 0
    finisher = Finisher(supabase_db, hooks=hooks)
    stop = threading.Event()
    worker = threading.Thread(
        target=finisher.run, args=(stop,), kwargs={"poll_seconds": 30.0}, daemon=True
    )
    worker.start()

    def claim(status: Any) -> None:
        claim_and_announce(supabase_db, user_id=user_id, code=status.claim_code)

    transports = [SupabaseTransport(gateway.url, jwt.anon_key(), realtime=False) for _ in range(2)]
    agents = [
        NodeAgent(
            t,
            info=NodeInfo(name=f"node{i}", max_parallel=2),
            hooks=hooks,
            cache=MemoryDiskCache(CacheSettings(directory=tmp_path / f"cache{i}")),
            options=AgentOptions(
                heartbeat_seconds=0.5, idle_wait_seconds=0.3, claim_wait_seconds=0.3
            ),
            on_claim_code=claim,
        )
        for i, t in enumerate(transports)
    ]
    try:
        with write_session(supabase_db) as s:
            owner = s.get(User, user_id)
            assert owner is not None
            job = submit_job(
                s,
                user=owner,
                config=_example_config(),
                iterations=ITERATIONS,
                engine_name=ENGINE,
                seed=SEED,
                hooks=hooks,
                chunks=7,
            )
            s.commit()
            job_id = job.id or 0
        with anyio.fail_after(240):
            async with anyio.create_task_group() as tg:
                for agent in agents:
                    tg.start_soon(agent.run)
                while True:
                    with read_session(supabase_db) as s:
                        stored = s.get(SimJob, job_id)
                        assert stored is not None
                        if stored.status != JobStatus.RUNNING.value and stored.status != "pending":
                            break
                    await anyio.sleep(0.1)
                for agent in agents:
                    agent.stop()
        assert stored.status == JobStatus.COMPLETED.value, stored.error
        assert finisher.finished == 1  # the worker, woken by NOTIFY, merged it
        assert dumps_report(stored.result) == dumps_report(expected)
        assert sum(a.stats.chunks_completed for a in agents) == 7
    finally:
        stop.set()
        worker.join(10)
        for t in transports:
            await t.aclose()
