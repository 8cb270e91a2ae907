"""Jobs say what ran (name, title, fight) in the API, the list, the page and the report JSON;
a job's public read-only link: made and revoked by its owner only, opened without a login,
no one's names on it, not indexed, gone (404) once revoked. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session
from wowlab_core.hookspecs import hookimpl
from wowlab_core.models import SimJob
from wowlab_core.testing.conformance import TOY_CONFIG
from wowlab_core.testing.toy_engine import ToyEngine
from wowlab_core.tokens import hash_token
from wowlab_portal.app import create_app

from .conftest import api_settings
from .test_web_authorization import _give_passwords, _login, page_csrf_token
from .world import build_world, run_all_chunks

API = "/api/v1"


class NamedToy(ToyEngine):
    """The toy engine with what real engines have: named configs, an example, a fight."""

    name = "named-toy"

    def __init__(self, example: Path) -> None:
        self.example = example

    def prepare(self, config: Any) -> dict[str, int]:
        if isinstance(config, dict):
            config = {k: v for k, v in config.items() if k != "name"}
        return super().prepare(config)

    def describe(self, prepared: Any) -> dict[str, Any]:
        return {"fight_seconds": 180.0, "fight_variation": 0.1, "targets": 2}

    def examples(self) -> Mapping[str, Path]:
        return {"toy_example": self.example}


def test_a_job_is_named_and_says_what_ran_in_the_api_and_its_report(
    api: TestClient,
    db: Engine,
    api_coordinator: Coordinator,
    register_plugin: Callable[[object], object],
    tmp_path: Path,
) -> None:
    example = tmp_path / "toy_example.json"
    example.write_text(json.dumps(TOY_CONFIG))
    engine = NamedToy(example)

    class Plugin:
        @hookimpl
        def wowlab_register_engines(self, register: Any) -> None:
            register(engine)

    register_plugin(Plugin())
    world = build_world(db, api_coordinator)
    gina = world.headers("gina")
    r = api.post(f"{API}/jobs", json={"example": "toy_example", "iterations": 30}, headers=gina)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "toy_example"  # an example without a name: the example's
    named = {**TOY_CONFIG, "name": "toy_raid"}
    body = {"config": named, "engine": "named-toy", "iterations": 300, "name": "x"}
    r = api.post(f"{API}/jobs", json=body, headers=gina)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["name"] == "toy_raid"  # the config's own name comes first
    assert job["title"] == "toy_raid · named-toy · 300 iterations"
    assert (job["fight_seconds"], job["fight_variation"], job["targets"]) == (180.0, 0.1, 2)
    assert job["state"] == "waiting" and job["waiting_reason"]
    assert job["state_text"] == f"waiting for a node: {job['waiting_reason']}"
    r = api.post(
        f"{API}/jobs",
        json={"config": TOY_CONFIG, "iterations": 20, "name": "my_file"},
        headers=gina,
    )
    assert r.json()["name"] == "my_file"  # no name in the config: the file's
    run_all_chunks(api_coordinator, world.node)
    done = api.get(f"{API}/jobs/{job['id']}", headers=gina).json()
    assert done["state"] == "completed" and done["elapsed_seconds"] >= 0
    section = done["report"]["job"]
    assert section["title"] == "toy_raid · named-toy · 300 iterations"
    assert section["nodes"] == 1 and section["seed"] == done["seed"]
    assert section["iterations"] == 300 and section["targets"] == 2
    download = api.get(f"{API}/jobs/{job['id']}/report", headers=gina).json()
    assert download["job"] == section and download["dps"] == done["report"]["dps"]
    listed = {j["id"]: j for j in api.get(f"{API}/jobs", headers=gina).json()}
    assert listed[job["id"]]["name"] == "toy_raid" and listed[job["id"]]["shared"] is False


def test_a_public_link_opens_the_report_until_its_owner_revokes_it(
    api: TestClient, db: Engine, api_coordinator: Coordinator
) -> None:
    world = build_world(db, api_coordinator)
    gina, olga = world.headers("gina"), world.headers("olga")
    r = api.post(f"{API}/jobs", json={"config": TOY_CONFIG, "iterations": 200}, headers=gina)
    job_id = r.json()["id"]
    run_all_chunks(api_coordinator, world.node)

    # A stranger can neither make nor revoke the link of gina's job.
    assert api.post(f"{API}/jobs/{job_id}/share", headers=olga).status_code == 404
    r = api.post(f"{API}/jobs/{job_id}/share", headers=gina)
    assert r.status_code == 201, r.text
    link = r.json()
    token = link["token"]
    assert link["url"].endswith(f"/share/{token}") and len(token) >= 40
    with read_session(db) as s:  # only the hash is kept
        job = s.get(SimJob, job_id)
        assert job is not None and job.share_token_hash == hash_token(token)
    assert api.delete(f"{API}/jobs/{job_id}/share", headers=olga).status_code == 404
    assert api.get(f"{API}/jobs/{job_id}", headers=gina).json()["shared"] is True

    api.cookies.clear()
    page = api.get(f"/share/{token}")  # no login
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "noindex" in page.headers["x-robots-tag"]
    text = page.text
    assert 'id="report"' in text and "DPS" in text and "Job " in text
    # Nobody's names: not the owner's, nor the node's or its owner's; no actions.
    for name in (world.accounts["gina"].user.username, world.accounts["alice"].user.username):
        assert name not in text
    assert ">rig<" not in text and 'action="/jobs' not in text and "Log out" not in text
    report = api.get(f"/share/{token}/report.json")
    assert report.status_code == 200 and report.json()["job"]["nodes"] == 1
    assert report.headers["referrer-policy"] == "no-referrer"
    html = api.get(f"/share/{token}/report.html")  # the standalone file, for anyone with the link
    assert html.status_code == 200 and "attachment" in html.headers["content-disposition"]
    assert "<svg" in html.text and "<script" not in html.text
    assert world.accounts["gina"].user.username not in html.text

    # A new link replaces the old one; revoking ends it; wrong tokens look the same.
    newer = api.post(f"{API}/jobs/{job_id}/share", headers=gina).json()["token"]
    assert api.get(f"/share/{token}").status_code == 404
    assert api.get(f"/share/{newer}").status_code == 200
    assert api.delete(f"{API}/jobs/{job_id}/share", headers=gina).json() == {"revoked": True}
    assert api.delete(f"{API}/jobs/{job_id}/share", headers=gina).json() == {"revoked": False}
    for gone in (newer, token, newer[:-1] + ("A" if newer[-1] != "A" else "B"), "short"):
        assert api.get(f"/share/{gone}").status_code == 404, gone
        assert api.get(f"/share/{gone}/report.json").status_code == 404, gone
        assert api.get(f"/share/{gone}/report.html").status_code == 404, gone
    assert api.get(f"/share/{'a' * 101}").status_code in (404, 422)


def test_the_owner_makes_and_revokes_the_link_from_the_job_page(
    db: Engine, api_coordinator: Coordinator
) -> None:
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        world = build_world(db, api_coordinator)
        _give_passwords(db, world)
        r = client.post(
            f"{API}/jobs",
            json={"config": TOY_CONFIG, "iterations": 50},
            headers=world.headers("alice"),
        )
        job_id = r.json()["id"]
        run_all_chunks(api_coordinator, world.node)
        _login(client, world, "owner")
        job_page = client.get(f"/jobs/{job_id}").text
        assert f'action="/jobs/{job_id}/share"' in job_page
        assert "/share/revoke" not in job_page  # nothing to revoke yet
        csrf = page_csrf_token(client)
        # Without the CSRF token the form is refused and no link is made.
        assert client.post(f"/jobs/{job_id}/share").status_code == 403
        made = client.post(f"/jobs/{job_id}/share", data={"csrf_token": csrf})
        assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
        url = re.search(r'id="share-url"[^>]*value="([^"]+)"', made.text)
        assert url, made.text
        token = url.group(1).rsplit("/", 1)[1]
        assert "wowlab keeps only a fingerprint" in made.text
        page = client.get(f"/jobs/{job_id}").text
        assert token not in page  # shown once, never again
        revoke = re.search(r'<form method="post" action="[^"]*/share/revoke"([^>]*)>', page)
        assert revoke and "data-confirm" in revoke.group(1)
        client.cookies.clear()
        assert client.get(f"/share/{token}").status_code == 200
        _login(client, world, "owner")
        csrf = page_csrf_token(client)
        reply = client.post(
            f"/jobs/{job_id}/share/revoke",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert reply.status_code == 303
        assert "Public link revoked." in client.get(reply.headers["location"]).text
        assert client.get(f"/share/{token}").status_code == 404
