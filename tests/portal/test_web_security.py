"""Attacks on the portal's pages and server (issue 8): script in a node's name, framing
and sniffing, cookies read by scripts, forged X-Forwarded-For, a world-readable
database, an open /metrics. Each reproduces the attack and shows it fails."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import create_db_engine, write_session
from wowlab_core.migrate import upgrade
from wowlab_core.models import Node, SimJob
from wowlab_core.plugins import Hooks
from wowlab_core.share_links import create_share_link
from wowlab_portal.app import create_app
from wowlab_portal.security_headers import CONTENT_SECURITY_POLICY

from .conftest import api_settings, make_account
from .served import ServedPortal, start_portal
from .server import serve
from .test_browser import browser  # noqa: F401  (a fixture)
from .test_web_authorization import FINISHED_JOB_TABLE, GET_TABLE, PASSWORD, _give_passwords, _login
from .world import build_world

#: A node name that, inside ``onsubmit="return confirm('Remove {{ name }}?')"``, closes
#: the string and runs code of its own (HTML escaping does not help: the browser decodes
#: the attribute before it runs it).
EVIL_NAME = "x'+(window.pwned=1)+alert('pwned')+'"


def _rename_node(db: Engine, node_id: int, name: str) -> None:
    with write_session(db) as session:
        node = session.get(Node, node_id)
        assert node is not None
        node.name = name
        session.add(node)
        session.commit()


# --- no user data in scripts ---------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)


def test_no_page_has_inline_scripts_handlers_or_styles(
    db: Engine, api_coordinator: Coordinator
) -> None:
    """Every page as its owner sees it, with a hostile node name: only static scripts."""
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        world = build_world(db, api_coordinator)
        _give_passwords(db, world)
        _rename_node(db, world.node_id, EVIL_NAME)
        _login(client, world, "owner")
        with write_session(db) as session:  # the finished job's public page too
            done = session.get(SimJob, world.done_job_id)
            assert done is not None
            token = create_share_link(session, job=done)
            session.commit()
        asked = [(t, world.job_id) for t in GET_TABLE]
        asked += [(t, world.done_job_id) for t in FINISHED_JOB_TABLE]
        for template, job_id in asked:
            path = template.format(node_id=world.node_id, job_id=job_id, token=token)
            html = client.get(path).text
            assert not INLINE_SCRIPT.search(html), (path, INLINE_SCRIPT.search(html))
            assert not EVENT_HANDLER.search(html), (path, EVENT_HANDLER.search(html))
            assert not STYLE_ATTRIBUTE.search(html), (path, STYLE_ATTRIBUTE.search(html))
        node_page = client.get(f"/nodes/{world.node_id}").text
        # The name is data, escaped in an attribute that a static script reads as text.
        assert 'data-confirm="Remove x&#39;+(window.pwned=1)+alert(&#39;pwned&#39;)+&#39;?"' in (
            node_page
        )


@pytest.mark.slow
def test_a_node_name_in_the_remove_confirmation_runs_no_script(
    sqlite_db: Engine,
    wowlab_hooks: Hooks,
    browser: object,  # noqa: F811
) -> None:
    """The stored XSS of the review: the owner clicks Remove on a node a stranger named."""
    from playwright.sync_api import Browser, Dialog

    assert isinstance(browser, Browser)
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks)
    with serve(create_app(api_settings(), coordinator=coordinator)) as url:
        world = build_world(sqlite_db, coordinator)
        _give_passwords(sqlite_db, world)
        _rename_node(sqlite_db, world.node_id, EVIL_NAME)
        page = browser.new_page(base_url=url)
        blocked: list[str] = []
        page.on("console", lambda m: blocked.append(m.text) if "Policy" in m.text else None)
        page.goto("/login")
        page.fill("input[name=username]", world.accounts["alice"].user.username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Log in')")
        page.wait_for_url("**/nodes")  # logged in before we go on (no race with the redirect)
        page.goto(f"/nodes/{world.node_id}")
        dialogs: list[str] = []

        def answer(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()  # "Cancel": the node stays

        page.on("dialog", answer)
        page.click("text=Remove this node")
        for _ in range(100):  # a loaded CI machine may take a while to show it
            if dialogs:
                break
            page.wait_for_timeout(100)
        page.wait_for_timeout(300)  # and no second one follows
        assert dialogs == [f"Remove {EVIL_NAME}?"]  # one question, the name as text
        assert page.evaluate("window.pwned") is None
        assert blocked == []
        # Confirming removes it: the confirmation works, it is not just blocked.
        page.remove_listener("dialog", answer)
        page.on("dialog", lambda d: d.accept())
        page.click("text=Remove this node")
        page.wait_for_url("**/nodes")
        with write_session(sqlite_db) as session:
            assert session.get(Node, world.node_id) is None


# --- headers and cookies ------------------------------------------------------------------


@pytest.fixture
def client(db: Engine, api_coordinator: Coordinator) -> Iterator[TestClient]:
    app = create_app(api_settings(), coordinator=api_coordinator)

    def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-only/broken", broken)  # a 500 is answered outside the middleware
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_every_answer_carries_the_security_headers(client: TestClient, db: Engine) -> None:
    alice = make_account(db, "alice")
    answers = {
        "page": client.get("/login"),
        "redirect": client.get("/nodes", follow_redirects=False),
        "api": client.get("/api/v1/me", headers=alice.headers),
        "401": client.get("/api/v1/me"),
        "404": client.get("/no/such/thing"),
        "422": client.post("/api/v1/node/register", json={}),
        "413": client.post("/api/v1/node/register", content=b" " * (2 * 1024 * 1024)),
        "static": client.get("/static/style.css"),
        "metrics": client.get("/metrics"),
        "openapi": client.get("/openapi.json"),
        "500": client.get("/test-only/broken"),
    }
    assert answers["500"].status_code == 500 and answers["413"].status_code == 413
    for name, r in answers.items():
        assert r.headers.get("x-frame-options") == "DENY", name
        assert r.headers.get("x-content-type-options") == "nosniff", name
        assert r.headers.get("referrer-policy") == "same-origin", name
        assert r.headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, name
    policy = dict(
        part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";") if part.strip()
    )
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and "unsafe" not in CONTENT_SECURITY_POLICY
    # /docs runs Swagger UI's one inline script, allowed by its hash, not 'unsafe-inline'.
    docs = client.get("/docs")
    assert docs.status_code == 200 and "'sha256-" in docs.headers["content-security-policy"]
    assert "unsafe" not in docs.headers["content-security-policy"]
    assert docs.headers["x-frame-options"] == "DENY"


def test_no_cookie_is_readable_by_scripts(client: TestClient) -> None:
    """The CSRF token used to be mirrored in a cookie scripts could read."""
    pages = [client.get("/signup")]
    token = re.search(r'name="csrf_token" value="([^"]+)"', pages[0].text)
    assert token
    form = {"csrf_token": token.group(1), "username": "alice", "password": "correct horse"}
    pages.append(client.post("/signup", data=form, follow_redirects=False))
    pages.append(
        client.post("/api/v1/auth/login", json={"username": "alice", "password": "correct horse"})
    )
    cookies = [c for r in pages for c in r.headers.get_list("set-cookie")]
    assert cookies and all("httponly" in c.lower() for c in cookies), cookies
    assert all("samesite=lax" in c.lower() for c in cookies), cookies


# --- X-Forwarded-For ----------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedPortal]:
    portal = start_portal(
        f"sqlite:///{tmp_path / 'portal.db'}", env={"WOWLAB_REGISTER_LIMIT_PER_MINUTE": "3"}
    )
    try:
        yield portal
    finally:
        assert portal.process.terminate() == 0, portal.process.output


def test_a_forged_x_forwarded_for_does_not_dodge_per_address_limits(served: ServedPortal) -> None:
    """``wowlab portal serve`` used to believe X-Forwarded-For from 127.0.0.1: a client on
    the same host (or behind a same-host proxy that passes it on) got a fresh limit per
    invented address."""
    codes = [
        httpx.post(
            f"{served.url}/api/v1/node/register",
            json={"name": f"n{i}"},
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        ).status_code
        for i in range(5)
    ]
    assert codes == [201, 201, 201, 429, 429]


def test_x_forwarded_for_is_believed_from_a_trusted_proxy_only(
    sqlite_db: Engine, wowlab_hooks: Hooks
) -> None:
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks)
    settings = api_settings(register_limit_per_minute=2, trusted_proxies=["127.0.0.1"])
    with serve(create_app(settings, coordinator=coordinator)) as url:

        def register(forwarded: str) -> int:
            headers = {"X-Forwarded-For": forwarded}
            reply = httpx.post(f"{url}/api/v1/node/register", json={"name": "n"}, headers=headers)
            return reply.status_code

        # Behind the proxy, each client has its own limit...
        assert [register("203.0.113.1") for _ in range(3)] == [201, 201, 429]
        assert [register("203.0.113.2") for _ in range(2)] == [201, 201]
        # ...and what a client prepends is not believed: the proxy appended the real one.
        assert register("10.9.9.9, 203.0.113.1") == 429


# --- the database file ----------------------------------------------------------------------


def test_the_sqlite_database_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a usual umask: files 0644 unless made otherwise
    try:
        path = tmp_path / "portal.db"
        engine = create_db_engine(f"sqlite:///{path}")
        try:
            upgrade(engine)
            with engine.connect() as conn:  # an open connection keeps -wal and -shm
                conn.execute(sa.text("SELECT count(*) FROM users"))
                files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
                modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
        finally:
            engine.dispose()
        assert modes == dict.fromkeys(modes, 0o600), {k: oct(v) for k, v in modes.items()}
        # A database made by an older wowlab (0644) is made private on the next start.
        path.chmod(0o644)
        create_db_engine(f"sqlite:///{path}").dispose()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


# --- /metrics -------------------------------------------------------------------------------


def test_metrics_need_the_token_when_one_is_set(api_coordinator: Coordinator) -> None:
    secret = "metrics-token-0123456789"
    app = create_app(api_settings(metrics_token=secret), coordinator=api_coordinator)
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer metrics-token-guess"})
        assert wrong.status_code == 401 and "WOWLAB_METRICS_TOKEN" in wrong.json()["detail"]
        right = client.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
        assert right.status_code == 200 and "wowlab_" in right.text
