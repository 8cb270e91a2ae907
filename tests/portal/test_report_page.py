"""The job page shows the engine's full report: per-ability detail, targets, resources,
timelines as inline SVG line charts and the sample sequence, without inline script or style."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import write_session
from wowlab_core.jobs import submit_job
from wowlab_core.models import SimJob, User
from wowlab_core.report import build_report
from wowlab_core.scheduler import complete_job
from wowlab_engine import plugin as engine_plugin
from wowlab_portal.accounts import password_hasher
from wowlab_portal.app import create_app

from .conftest import api_settings, make_account

PASSWORD = "correct horse battery"


#: The jobs' seed: fixed, so a page shows the same numbers in every run.
SEED = 20_261_130


def _finished_numba_job(db: Engine, coordinator: Coordinator, example: str) -> tuple[str, int]:
    engine = coordinator.hooks.engine("numba")
    config = json.loads(engine.examples()[example].read_text())
    account = make_account(db, f"reader-{example}")
    with write_session(db) as session:
        session.execute(
            sa.update(User)
            .where(sa.column("id") == account.id)
            .values(password_hash=password_hasher(time_cost=1, memory_kib=1024).hash(PASSWORD))
        )
        job = submit_job(
            session,
            user=account.user,
            config=config,
            iterations=20,
            seed=SEED,
            hooks=coordinator.hooks,
            engine_name="numba",
        )
        prepared = engine.prepare(config)
        merged = engine.run_chunk(prepared, seed=job.seed, seed_offset=0, iterations=20)
        report = build_report(
            merged=merged,
            seed=job.seed,
            config_hash=job.config_hash,
            engine_name="numba",
            engine=engine,
            prepared=prepared,
        )
        complete_job(session, job=job, report=report)
        session.commit()
        return account.user.username, job.id or 0


def _report_part(page: str) -> str:
    return page[page.index('id="report"') :]


def test_job_page_shows_the_detail_and_timeline_charts(
    db: Engine, api_coordinator: Coordinator, register_plugin: Callable[[object], object]
) -> None:
    register_plugin(engine_plugin)
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        for example in ("affliction", "aoe_mage"):
            username, job_id = _finished_numba_job(db, api_coordinator, example)
            client.cookies.clear()
            reply = client.post(
                "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
            )
            assert reply.status_code == 200, reply.text
            page = client.get(f"/jobs/{job_id}")
            assert page.status_code == 200
            part = _report_part(page.text)
            for marker in ('id="abilities"', "DPET", "Max hit", 'id="fight"', "apm"):
                assert marker in part, marker
            assert "DPS over time" in part
            for key in ("p1", "p5", "q1", "median", "q3", "p95", "p99"):  # report version 2
                assert f'id="dps-{key}"' in part, key
            assert 'id="sample-sequence"' in part
            # Line charts: the DPS timeline, each resource and the aura uptimes.
            assert part.count('class="chart timeline"') >= 3
            assert re.search(r'<polyline class="line series-0" points="[0-9., ]+">', part)
            if example == "aoe_mage":
                assert 'id="targets"' in part and 'id="ability-targets"' in part
            else:
                assert 'id="resource-gains"' in part and "soul_shard" in part
            # Nothing that a strict content-security policy would block.
            assert "<script" not in part
            assert not re.search(r"\sstyle=", part)
            assert not re.search(r"\son[a-z]+=", part)


def test_a_report_stored_before_version_2_still_reads(
    db: Engine, api_coordinator: Coordinator, register_plugin: Callable[[object], object]
) -> None:
    # A job finished by an older wowlab keeps its report: 1 %-bucket quartiles, no p1..p99,
    # rows without labels (tests/fixtures/v1_report.json, made by that code).
    register_plugin(engine_plugin)
    old = json.loads((Path(__file__).parent.parent / "fixtures" / "v1_report.json").read_text())
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        username, job_id = _finished_numba_job(db, api_coordinator, "fire_mage")
        with write_session(db) as session:
            session.execute(sa.update(SimJob).where(sa.column("id") == job_id).values(result=old))
            session.commit()
        reply = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert reply.status_code == 200, reply.text
        page = client.get(f"/jobs/{job_id}")
        assert page.status_code == 200
        part = _report_part(page.text)
        assert f'id="dps-q1">{old["dps"]["q1"]:,.0f}<' in part
        assert 'id="dps-p1"' not in part
        assert (
            "<td>Fire Blast</td>" in part
            and ">fire_blast<" not in part.split('id="sample-sequence"')[0]
        )
        assert "<h2>Cooldowns and utility</h2>" in part and "<td>Time Warp</td>" in part
        html = client.get(f"/jobs/{job_id}/report.html")
        assert html.status_code == 200 and "report version 1" in html.text
