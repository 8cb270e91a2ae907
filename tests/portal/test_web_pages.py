"""The pages as a browser gets them (issue 12): error pages instead of JSON, forms that keep
what was typed and tie each error to its field, the new-simulation form's explicit
choice, the landing page, the node command, the favicon, numbers and times."""

from __future__ import annotations

import html as html_lib
import re
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session
from wowlab_core.errors import RateLimited
from wowlab_core.models import Node, SimJob
from wowlab_core.plugins import Hooks
from wowlab_core.testing.conformance import TOY_CONFIG
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_portal.app import create_app
from wowlab_portal.web import STATIC_DIR
from wowlab_portal.web.forms import iso_utc, num, templates, utc

from .conftest import api_settings
from .test_web_authorization import PASSWORD, _give_passwords, _login, page_csrf_token
from .world import World, build_world

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def world_client(sqlite_db: Engine, wowlab_hooks: Hooks) -> Iterator[tuple[TestClient, World]]:
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    app = create_app(api_settings(), coordinator=coordinator)

    def broken() -> None:
        raise RuntimeError("a bug")

    def limited() -> None:
        raise RateLimited("too many claims; wait 42 s")

    app.add_api_route("/test-only/broken", broken, include_in_schema=False)
    app.add_api_route("/test-only/limited", limited, include_in_schema=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        world = build_world(sqlite_db, coordinator)
        _give_passwords(sqlite_db, world)
        yield client, world


def _error_page(reply: object, status: int, heading: str) -> str:
    from httpx import Response

    assert isinstance(reply, Response)
    assert reply.status_code == status, (reply.status_code, reply.text[:300])
    assert reply.headers["content-type"].startswith("text/html"), reply.headers
    html = reply.text
    assert f"<h1>{heading}</h1>" in html, html
    assert 'href="/static/style.css"' in html  # the site's layout, not a bare page
    assert '"error":' not in html and '"detail":' not in html
    return html


# --- error pages ------------------------------------------------------------------------------


def test_browsers_get_error_pages_where_the_api_keeps_its_json(
    world_client: tuple[TestClient, World],
) -> None:
    client, world = world_client
    _login(client, world, "other")  # olga: may see neither alice's node nor her job
    for path in ("/no-such-page", "/jobs/999999", "/nodes/abc", "/jobs/99999999999"):
        html = _error_page(client.get(path, headers=HTML), 404, "Page not found")
        assert "There is no such page, or it is not yours to see." in html
    # Another user's job and node: the same page as a missing one (it does not say it exists).
    html = _error_page(client.get(f"/jobs/{world.job_id}", headers=HTML), 404, "Page not found")
    assert 'href="/jobs">Back to Jobs</a>' in html
    assert "olga" in html  # still logged in: the layout shows who, and the nav
    _error_page(client.get(f"/nodes/{world.node_id}", headers=HTML), 404, "Page not found")
    # A form on another user's node, sent: the same page (the write session is closed first).
    _login(client, world, "friend")  # fred may use alice's node, not change it
    token = page_csrf_token(client)
    reply = client.post(
        f"/nodes/{world.node_id}", data={"csrf_token": token, "name": "mine now",
                                          "max_parallel": "4"}, headers=HTML,
    )  # fmt: skip
    assert reply.status_code in (403, 404) and "text/html" in reply.headers["content-type"]
    assert "mine now" not in reply.text
    _login(client, world, "other")
    # A form for a page, visited: 405 with its own words.
    _error_page(client.get("/logout", headers=HTML), 405, "Not a page")

    # The same requests from the API, scripts or a client that does not ask for HTML: JSON.
    for path in ("/no-such-page", "/jobs/999999", f"/jobs/{world.job_id}"):
        reply = client.get(path)
        assert reply.status_code == 404
        assert reply.json()["error"] == "NotFound"
    reply = client.get("/api/v1/jobs/999999", headers=HTML)  # the API never answers a page
    assert reply.status_code == 404 and reply.json()["error"] == "NotFound"
    reply = client.post("/metrics", headers=HTML)  # nor do the probes' endpoints
    assert reply.status_code == 405 and reply.json()["error"] == "HTTPError"
    reply = client.get("/nodes/abc")
    assert reply.status_code == 422 and reply.json()["field"] == "node_id"


def test_a_form_sent_after_logging_out_elsewhere_gets_a_page_that_says_so(
    world_client: tuple[TestClient, World],
) -> None:
    client, world = world_client
    _login(client, world, "owner")
    token = page_csrf_token(client)
    client.cookies.clear()  # logged out in another tab: the session and its token are gone
    reply = client.post(
        f"/nodes/{world.node_id}", data={"csrf_token": token, "name": "x"}, headers=HTML
    )
    html = _error_page(reply, 403, "This form has expired")
    assert "You were logged out (perhaps in another tab)" in html
    assert 'href="/login?next=/nodes"' in html  # a way back in
    with read_session(client.app.state.db) as session:  # type: ignore[attr-defined]
        node = session.get(Node, world.node_id)
        assert node is not None and node.name != "x"


def test_a_bug_gets_a_page_with_the_security_headers(
    world_client: tuple[TestClient, World],
) -> None:
    client, _ = world_client
    reply = client.get("/test-only/broken", headers=HTML)
    _error_page(reply, 500, "Something went wrong on our side")
    assert "default-src 'self'" in reply.headers["content-security-policy"]
    assert client.get("/test-only/broken").json()["error"] == "InternalError"


def test_too_many_attempts_is_a_page_for_a_browser(
    world_client: tuple[TestClient, World],
) -> None:
    client, _ = world_client
    reply = client.get("/test-only/limited", headers=HTML)
    html = _error_page(reply, 429, "Too many attempts")
    assert "Wait a minute, then try again." in html
    assert "Too many claims; wait 42 s." in html
    assert client.get("/test-only/limited").json()["error"] == "RateLimited"


# --- forms ------------------------------------------------------------------------------------


def _field(html: str, name: str) -> str:
    found = re.search(rf'<(?:input|textarea|select)[^>]*\bname="{name}"[^>]*>', html)
    assert found, name
    return found.group(0)


def test_an_emptied_field_is_a_form_error_with_the_input_kept(
    world_client: tuple[TestClient, World],
) -> None:
    """The review's {"detail":"max_parallel is required"}: now the page again, marked up."""
    client, world = world_client
    _login(client, world, "owner")
    token = page_csrf_token(client)
    reply = client.post(
        f"/nodes/{world.node_id}",
        data={"csrf_token": token, "name": "", "max_parallel": "", "labels": "fast, gpu"},
        headers=HTML,
    )
    assert reply.status_code == 422 and reply.headers["content-type"].startswith("text/html")
    html = reply.text
    # Every mistake at once, each beside its field and tied to it.
    for name in ("name", "max_parallel"):
        field = _field(html, name)
        assert 'aria-invalid="true"' in field and f'aria-describedby="error-{name}"' in field
        assert f'<span class="error" id="error-{name}">' in html
    assert "Give the node a name." in html
    assert "a whole number from 1 to 256" in html
    assert 'value="fast, gpu"' in _field(html, "labels")  # what was typed, not what is stored
    assert "aria-invalid" not in _field(html, "labels")
    # Client-side checks say the same before the form is sent.
    assert "required" in _field(html, "name")
    assert 'min="1"' in _field(html, "max_parallel")
    assert 'max="256"' in _field(html, "max_parallel")
    # The sharing choice is a group with a name.
    assert re.search(
        r"<fieldset[^>]*>\s*<legend>Who may run simulations on this node</legend>", html
    )


def test_a_taken_username_keeps_the_input(world_client: tuple[TestClient, World]) -> None:
    client, world = world_client
    client.cookies.clear()
    token = page_csrf_token(client)
    taken = world.accounts["alice"].user.username
    reply = client.post(
        "/signup", data={"csrf_token": token, "username": taken, "password": PASSWORD}
    )
    assert reply.status_code == 422
    field = _field(reply.text, "username")
    assert f'value="{taken}"' in field and 'aria-invalid="true"' in field
    assert "is taken." in reply.text


def _new_job(client: TestClient, **form: str) -> tuple[int, str]:
    token = page_csrf_token(client)
    reply = client.post("/jobs/new", data={"csrf_token": token, **form}, follow_redirects=False)
    return reply.status_code, reply.text


def test_the_new_simulation_form_runs_only_what_was_chosen(
    world_client: tuple[TestClient, World],
) -> None:
    client, world = world_client
    _login(client, world, "owner")
    db = client.app.state.db  # type: ignore[attr-defined]
    with read_session(db) as session:
        jobs_before = len(session.query(SimJob).all())
    pasted = '{"name": "my own", "not": "checked yet"}'
    # A config pasted while "Run an example" is chosen: refused, the text kept, nothing runs.
    status, html = _new_job(client, source="example", example="some_example", config=pasted)
    assert status == 422
    assert "You pasted a config but chose" in html
    assert "my own" in html and 'aria-describedby="error-config' in html
    assert re.search(r'value="example" required checked', html)
    # No choice, and both an example and a config (a hand-made post): refused too.
    status, html = _new_job(client, example="some_example", config=pasted)
    assert status == 422 and "Choose what to run" in html
    # "Paste a config" with nothing pasted.
    status, html = _new_job(client, source="paste", config="  ")
    assert status == 422 and "Paste a config (JSON), or choose an example." in html
    with read_session(db) as session:
        assert len(session.query(SimJob).all()) == jobs_before
    # Pasted and chosen: it runs the pasted config even with an example selected.
    import json

    status, _ = _new_job(
        client, source="paste", example="whatever", config=json.dumps(TOY_CONFIG), iterations="10"
    )
    assert status == 303
    with read_session(db) as session:
        assert len(session.query(SimJob).all()) == jobs_before + 1


def test_every_mistake_of_a_config_is_listed(world_client: tuple[TestClient, World]) -> None:
    """ConfigInvalid carries every problem: the form lists them all, not "(and 2 more)"."""
    from wowlab_core.errors import ConfigInvalid

    problems = [("actor.crit", "must be positive"), ("spells[0].cooldown", "too long"), ("x", "y")]
    exc = ConfigInvalid("actor.crit: must be positive (and 2 more)", field="actor.crit",
                        problems=problems)  # fmt: skip
    assert exc.problems == tuple(problems)
    html = templates.get_template("new_job.html").render(
        request=None, user=None, csrf_token="t", flash=None, examples=[],
        form={"source": "paste", "example": "", "config": "{}", "iterations": "",
              "target_error": "", "nodes": "shared", "compare": "none", "stats": "", "delta": "",
              "profilesets": ""},
        errors={"config": exc.message}, problems=[f"{p}: {m}" for p, m in problems],
        sources={"example": "Run an example", "paste": "Paste a config"}, max_iterations=10,
    )  # fmt: skip
    for path, message in problems:
        assert f"<li>{path}: {message}</li>" in html
    assert 'aria-describedby="error-config config-problems"' in html


def test_the_form_lists_every_mistake_the_engine_finds(
    world_client: tuple[TestClient, World], register_plugin: Callable[[object], object]
) -> None:
    """The engine's ConfigInvalid carries every problem through the API to the form."""
    from wowlab_engine import plugin as engine_plugin

    register_plugin(engine_plugin)
    client, world = world_client
    _login(client, world, "owner")
    broken = (
        '{"name": "broken", "actor": {"primary_stat": -5, "crit_pct": 500},'
        ' "spells": [{"name": "bolt", "gcd": -1, "damage": {"coefficient": 1}}],'
        ' "rotation": [{"spell": "bolt"}]}'
    )
    status, html = _new_job(client, source="paste", config=broken, iterations="10")
    assert status == 422, html
    listed = re.search(r'<ul class="error errors" id="config-problems"[^>]*>(.*?)</ul>', html)
    assert listed is not None, html
    items = re.findall(r"<li>(.*?)</li>", listed.group(1))
    assert len(items) >= 2 and all(": " in item for item in items)
    assert "broken" in html  # the pasted text is kept


# --- landing page, node command, favicon ------------------------------------------------------


def test_visitors_get_a_landing_page_and_users_their_nodes(
    world_client: tuple[TestClient, World],
) -> None:
    client, world = world_client
    client.cookies.clear()
    reply = client.get("/", headers=HTML)
    assert reply.status_code == 200
    html = reply.text
    assert 'href="/signup"' in html and 'href="/login"' in html
    assert "wowlab node run --transport http --url http://testserver" in html
    _login(client, world, "owner")
    assert client.get("/", follow_redirects=False).headers["location"] == "/nodes"


def test_my_nodes_empty_state_gives_the_exact_command(
    world_client: tuple[TestClient, World],
) -> None:
    client, world = world_client
    _login(client, world, "other")  # olga owns no node
    html = client.get("/nodes").text
    command = re.search(r'<pre class="command" id="node-command"><code>(.*?)</code></pre>', html,
                        re.DOTALL)  # fmt: skip
    assert command is not None
    assert html_lib.unescape(command.group(1)).splitlines() == [
        "pip install 'wowlab[node]'",
        "wowlab node run --transport http --url http://testserver",
    ]
    assert "pip install 'wowlab[gui]'" in html_lib.unescape(html) and "wowlab gui" in html


def test_the_favicon_is_served(world_client: tuple[TestClient, World]) -> None:
    client, _ = world_client
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.content[:4] == b"\x00\x00\x01\x00"
    svg = client.get("/favicon.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert '<link rel="icon" href="/favicon.svg"' in client.get("/login").text


# --- numbers and times ------------------------------------------------------------------------


def test_numbers_have_thousands_separators() -> None:
    assert num(1234567) == "1,234,567"
    assert num(1234.56, 1) == "1,234.6"
    assert num(None) == "\u2013"
    assert num("12345") == "12,345"


def test_times_are_utc_with_their_zone_for_the_local_time_script() -> None:
    naive = datetime(2026, 11, 29, 22, 47, 5)  # the database keeps naive UTC
    assert iso_utc(naive) == "2026-11-29T22:47:05Z"
    assert utc(naive) == "2026-11-29 22:47 UTC"
    html = templates.env.from_string('{% from "_macros.html" import when %}{{ when(t) }}').render(
        t=datetime(2026, 11, 29, 22, 47, 5, tzinfo=UTC)
    )
    assert html == '<time datetime="2026-11-29T22:47:05Z">2026-11-29 22:47 UTC</time>'


def test_destructive_forms_ask_first(world_client: tuple[TestClient, World]) -> None:
    """With JavaScript, confirm.js asks (data-confirm); without, the server asks on a page:
    a post without confirmed=yes changes nothing and shows the question with its button."""
    client, world = world_client
    _login(client, world, "owner")
    fred = world.accounts["fred"].user.username
    assert 'data-confirm="Remove ' in client.get(f"/nodes/{world.node_id}").text
    assert 'data-confirm="Log out of every browser' in client.get("/account").text
    assert re.search(r'action="/guilds/\d+/leave" data-confirm="Leave ', client.get("/guilds").text)
    assert f'data-confirm="Remove {fred} from your friends?"' in client.get("/friends").text
    token = page_csrf_token(client)
    asked = {
        f"/nodes/{world.node_id}/remove": "Remove ",
        f"/guilds/{world.guild_id}/leave": "Leave guild-",
        f"/friends/{fred}/remove": f"Remove {fred} from your friends?",
        "/account/logout-all": "Log out of every browser, this one too?",
    }
    for action, question in asked.items():
        reply = client.post(action, data={"csrf_token": token}, follow_redirects=False)
        assert reply.status_code == 200, (action, reply.status_code)
        page = reply.text
        assert f"<h1>{question}" in page, action
        assert f'action="{action}"' in page and 'name="confirmed" value="yes"' in page
    with read_session(client.app.state.db) as session:  # type: ignore[attr-defined]
        assert session.get(Node, world.node_id) is not None  # nothing happened
    assert client.get("/nodes").status_code == 200  # still logged in
    assert fred in client.get("/friends").text
    # Confirmed: done.
    reply = client.post(
        f"/nodes/{world.node_id}/remove",
        data={"csrf_token": token, "confirmed": "yes"},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    with read_session(client.app.state.db) as session:  # type: ignore[attr-defined]
        assert session.get(Node, world.node_id) is None
    # Nobody is asked about what is not theirs: another user gets 404 before any question.
    _login(client, world, "other")
    token = page_csrf_token(client)
    reply = client.post(f"/guilds/{world.guild_id}/leave", data={"csrf_token": token})
    assert reply.status_code == 404


# --- what the pages load ships in the wheel ---------------------------------------------------


def test_every_static_file_and_template_ships_in_the_wheel() -> None:
    """CI tests the built wheel: package-data that left out the .js files served confirm.js
    as a 404 there, so the remove confirmation never appeared (and the job page never
    updated). Every file of web/static and web/templates must match a package-data glob."""
    root = Path(__file__).resolve().parents[2]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["wowlab_portal"]
    package = root / "wowlab_portal"
    files = [
        p.relative_to(package).as_posix()
        for folder in ("web/static", "web/templates")
        for p in (package / folder).iterdir()
        if p.is_file()
    ]
    assert any(f.endswith(".js") for f in files)
    missing = [f for f in files if not any(fnmatch(f, pattern) for pattern in patterns)]
    assert missing == []


def test_every_static_file_a_page_loads_is_installed() -> None:
    """Against the installed package (the wheel in CI): each /static/ or icon a template
    names is there."""
    folder = Path(templates.env.loader.searchpath[0])  # type: ignore[union-attr]
    named = set()
    for template in folder.glob("*.html"):
        named |= set(re.findall(r'"/static/([\w.-]+)"', template.read_text()))
    assert {"confirm.js", "local-time.js", "style.css", "new-job.js"} <= named
    for name in sorted(named | {"favicon.ico", "favicon.svg"}):
        assert (STATIC_DIR / name).is_file(), name
