"""Compare jobs on the portal: stat weights and profile sets submitted from the new-job form,
run by a node on the real engine; a profile set's stages follow each other on the pool and
every stage's page links the others; a restart resumes an interrupted chain exactly once."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session, write_session
from wowlab_core.models import SimJob, User
from wowlab_core.nodes import claim_node
from wowlab_core.profileset_chain import ProfileSetChain
from wowlab_core.protocol import Completion, NodeCredentials, NodeInfo
from wowlab_engine import plugin as engine_plugin
from wowlab_engine.engine import NumbaEngine
from wowlab_portal.accounts import password_hasher
from wowlab_portal.app import create_app

from .conftest import api_settings, make_account

PASSWORD = "correct horse battery"
ENGINE = NumbaEngine()
SPAMMER = (
    '{"name": "spammer", "actor": {"primary_stat": 1000, "crit_pct": 10},'
    ' "fight": {"max_time": 60, "vary_combat_length": 0.2},'
    ' "spells": [{"name": "bolt", "gcd": 1.5, "gcd_hasted": false,'
    ' "damage": {"coefficient": 1}}], "rotation": [{"spell": "bolt"}]}'
)
PROFILESETS = (
    "{"
    + ", ".join(f'"crit_{i}": {{"actor": {{"crit_rating": {300 * i}}}}}' for i in range(6))
    + "}"
)


def _user_with_node(db: Engine, coordinator: Coordinator, name: str) -> NodeCredentials:
    account = make_account(db, name)
    reg = coordinator.register(NodeInfo(name="rig", max_parallel=4, platform="linux"))
    with write_session(db) as session:
        session.execute(
            sa.update(User)
            .where(sa.column("id") == account.id)
            .values(password_hash=password_hasher(time_cost=1, memory_kib=1024).hash(PASSWORD))
        )
        claim_node(session, user=account.user, code=reg.claim_code)
        session.commit()
    return NodeCredentials(node_id=reg.node_id, token=reg.token)


def _run_everything(coordinator: Coordinator, creds: NodeCredentials) -> int:
    """A node on the real engine: lease, run, complete, until nothing is left (the next
    stage of a profile set is submitted by an event listener, off the completing call)."""
    done = 0
    while True:
        leases = coordinator.lease(creds, 8)
        if not leases:
            coordinator.settle()  # jobs are merged after their last chunk's call
            coordinator.hooks.flush_events(30)
            leases = coordinator.lease(creds, 8)
            if not leases:
                break
        completions = []
        for le in leases:
            config = coordinator.get_config(creds, le.config_hash).config
            result = ENGINE.run_chunk(
                ENGINE.prepare(config),
                seed=le.seed,
                seed_offset=le.seed_offset,
                iterations=le.iterations,
            )
            completions.append(
                Completion(
                    chunk_id=le.chunk_id, lease_token=le.lease_token, result=result.to_dict()
                )
            )
        coordinator.complete(creds, completions)
        done += len(leases)
    return done


def _submit(client: TestClient, username: str, **form: str) -> int:
    client.cookies.clear()
    reply = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    token = reply.json()["csrf_token"]
    reply = client.post("/jobs/new", data={**form, "csrf_token": token}, follow_redirects=False)
    assert reply.status_code == 303, reply.text
    return int(reply.headers["location"].rsplit("/", 1)[1])


def _jobs(db: Engine, username: str) -> list[SimJob]:
    with read_session(db) as session:
        user = session.exec(select(User).where(col(User.username) == username)).one()
        return list(
            session.exec(
                select(SimJob).where(col(SimJob.user_id) == user.id).order_by(col(SimJob.id))
            ).all()
        )


def test_scale_factors_from_the_form(
    db: Engine, api_coordinator: Coordinator, register_plugin: Callable[[object], object]
) -> None:
    register_plugin(engine_plugin)
    creds = _user_with_node(db, api_coordinator, "weigher")
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        job_id = _submit(
            client,
            "weigher",
            config=SPAMMER,
            iterations="300",
            compare="scale_factors",
            stats="crit, haste, primary",
            delta="700",
        )
        assert _run_everything(api_coordinator, creds) > 0
        page = client.get(f"/jobs/{job_id}").text
    table = page[page.index('id="scale-factors"') :]
    rows = re.findall(r"<tr><td>(crit|haste|primary)</td><td>([-0-9.]+)</td>", table)
    assert [r[0] for r in rows] == ["crit", "haste", "primary"]
    values = {stat: float(v) for stat, v in rows}
    assert values["haste"] == 0.0  # the GCD is not hasted
    assert values["crit"] > 0 and values["primary"] > 0
    assert "<script" not in page[page.index('id="compare"') :]


def test_profile_set_stages_run_on_the_pool_and_link_each_other(
    db: Engine, api_coordinator: Coordinator, register_plugin: Callable[[object], object]
) -> None:
    register_plugin(engine_plugin)
    creds = _user_with_node(db, api_coordinator, "gearer")
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        first = _submit(
            client,
            "gearer",
            config=SPAMMER,
            iterations="50",
            target_error="0.5",
            compare="profilesets",
            profilesets=PROFILESETS,
        )
        _run_everything(api_coordinator, creds)
        jobs = _jobs(db, "gearer")
        assert jobs[0].id == first and len(jobs) >= 2
        assert all(j.status == "completed" for j in jobs)
        assert jobs[0].total_iterations == 100  # stage 1: every variant, 100 iterations
        pages = {j.id: client.get(f"/jobs/{j.id}").text for j in jobs}
    last = pages[jobs[-1].id]
    assert "(final)" in last
    for job in jobs:  # the last stage links every stage
        assert f'href="/jobs/{job.id}"' in last
    # Stage 1 links stage 2.
    assert f'href="/jobs/{jobs[1].id}"' in pages[first]
    ranking = last[last.index('id="ranking"') :]
    names = re.findall(r"<tr><td>\d+</td><td>([a-z0-9_]+)</td>", ranking)
    assert names[0] == "crit_5" and set(names) == {"base", *(f"crit_{i}" for i in range(6))}
    assert 'id="variants"' in last


def test_an_interrupted_chain_resumes_once(
    db: Engine, api_coordinator: Coordinator, register_plugin: Callable[[object], object]
) -> None:
    register_plugin(engine_plugin)
    creds = _user_with_node(db, api_coordinator, "restarter")
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        _submit(
            client,
            "restarter",
            config=SPAMMER,
            iterations="50",
            target_error="0.5",
            compare="profilesets",
            profilesets=PROFILESETS,
        )
    # The portal is down (no chain plugin): stage 1 completes and nothing follows.
    _run_everything(api_coordinator, creds)
    assert len(_jobs(db, "restarter")) == 1
    notified: list[Any] = []
    chain = ProfileSetChain(db, api_coordinator.hooks, lambda: notified.append(1))
    assert chain.resume() == 1
    assert chain.resume() == 0  # the next stage exists: never submitted twice
    assert len(_jobs(db, "restarter")) == 2 and notified == [1]


def test_workers_resuming_one_chain_at_once_submit_its_next_stage_once(
    db: Engine,
    api_coordinator: Coordinator,
    register_plugin: Callable[[object], object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every portal worker resumes interrupted chains when it starts; started together,
    they must not each submit the next stage, nor fail on each other's."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from wowlab_core.db import create_db_engine
    from wowlab_core.hookspecs import hookimpl

    register_plugin(engine_plugin)
    creds = _user_with_node(db, api_coordinator, "crowd")
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        _submit(
            client, "crowd", config=SPAMMER, iterations="50", target_error="0.5",
            compare="profilesets", profilesets=PROFILESETS,
        )  # fmt: skip
    _run_everything(api_coordinator, creds)

    class SlowPlanning:
        """Widens the window between "is the next stage there?" and its insert."""

        @hookimpl
        def wowlab_plan_chunks(self, job: Any, capacity: Any) -> None:
            time.sleep(0.3)

    register_plugin(SlowPlanning())
    engines = [create_db_engine(db.url.render_as_string(hide_password=False)) for _ in range(4)]
    chains = [ProfileSetChain(e, api_coordinator.hooks, lambda: None) for e in engines]
    with ThreadPoolExecutor(4) as pool:
        submitted = list(pool.map(lambda c: c.resume(), chains))
    for engine in engines:
        engine.dispose()
    assert sum(submitted) == 1
    assert len(_jobs(db, "crowd")) == 2
    assert not [r for r in caplog.records if "cannot advance" in r.getMessage()]
