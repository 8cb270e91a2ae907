"""Who may see which page: every GET page, called by every kind of caller with a real
logged-in session (the pages use sessions, not API tokens), on SQLite and PostgreSQL.
Form posts on another user's node or job change nothing.

The table must name every page route; a new page without an entry fails
:func:`test_every_page_has_an_authorization_entry`.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session, write_session
from wowlab_core.models import Node, SimJob, User
from wowlab_portal.accounts import password_hasher
from wowlab_portal.app import create_app

from .conftest import api_settings
from .world import World, build_world

PASSWORD = "correct horse battery"
PAGE_USERS = {"owner": "alice", "friend": "fred", "guild": "gina", "other": "olga"}
ACTORS = (*PAGE_USERS, "anon")
LOGIN = 303  # anyone not logged in is sent to the log-in page


def pages(status: int, **overrides: int) -> dict[str, int]:
    """A page for logged-in users."""
    return {**dict.fromkeys(PAGE_USERS, status), "anon": LOGIN, **overrides}


def public(status: int) -> dict[str, int]:
    return dict.fromkeys(ACTORS, status)


GET_TABLE: dict[str, dict[str, int]] = {
    "/": {**public(303), "anon": 200},  # to My nodes; visitors get the landing page
    "/favicon.ico": public(200),
    "/favicon.svg": public(200),
    "/signup": public(200),
    "/login": public(200),
    "/nodes": pages(200),
    "/nodes/available": pages(200),
    "/nodes/claim": pages(200),
    "/nodes/{node_id}": pages(404, owner=200, friend=200, guild=200),  # shared with them
    "/jobs": pages(200),
    "/jobs/new": pages(200),
    "/jobs/{job_id}": pages(404, owner=200),
    # A pending job has no report file yet (the finished one: FINISHED_JOB_TABLE).
    "/jobs/{job_id}/report.html": pages(404),
    "/guilds": pages(200),
    "/friends": pages(200),
    "/account": pages(200),
    # A share link opens without logging in; a token that was never made (or was revoked)
    # is not found, whoever asks (tests/portal/test_job_sharing.py has a working one).
    "/share/{token}": public(404),
    "/share/{token}/report.json": public(404),
    "/share/{token}/report.html": public(404),
}
NO_SUCH_TOKEN = "x" * 43
#: Pages asked again for the world's finished job, whose report only its owner reads.
FINISHED_JOB_TABLE: dict[str, dict[str, int]] = {
    "/jobs/{job_id}": pages(404, owner=200),
    "/jobs/{job_id}/report.html": pages(404, owner=200),
}


def page_routes() -> set[tuple[str, str]]:
    app = create_app(api_settings())
    found = set()
    for context in iter_route_contexts(app.routes):
        route = context.route
        if isinstance(route, APIRoute) and not route.include_in_schema:
            found |= {(m, context.path) for m in route.methods or ()}
    return found


def test_every_page_has_an_authorization_entry() -> None:
    gets = {path for method, path in page_routes() if method == "GET"}
    assert sorted(gets ^ set(GET_TABLE)) == []


def _login(client: TestClient, world: World, actor: str) -> None:
    client.cookies.clear()
    if actor == "anon":
        return
    username = world.accounts[PAGE_USERS[actor]].user.username
    reply = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert reply.status_code == 200, reply.text


def page_csrf_token(client: TestClient) -> str:
    """The CSRF token a page's forms carry, for this client's session."""
    page = client.get("/login", follow_redirects=False).text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _give_passwords(db: Engine, world: World) -> None:
    hashed = password_hasher(time_cost=1, memory_kib=1024).hash(PASSWORD)
    ids = [account.id for account in world.accounts.values()]
    with write_session(db) as session:
        session.execute(
            sa.update(User).where(sa.column("id").in_(ids)).values(password_hash=hashed)
        )
        session.commit()


def test_every_page_answers_each_caller_as_the_table_says(
    db: Engine, api_coordinator: Coordinator
) -> None:
    wrong = []
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        world = build_world(db, api_coordinator)
        _give_passwords(db, world)
        for actor in ACTORS:
            _login(client, world, actor)
            asked = [(t, e, world.job_id) for t, e in GET_TABLE.items()]
            asked += [(t, e, world.done_job_id) for t, e in FINISHED_JOB_TABLE.items()]
            for template, expect, job_id in asked:
                path = template.format(node_id=world.node_id, job_id=job_id, token=NO_SUCH_TOKEN)
                got = client.get(path, follow_redirects=False).status_code
                if got != expect[actor]:
                    wrong.append(f"GET {path} as {actor}: {got}, not {expect[actor]}")
    assert wrong == []


def test_forms_on_another_users_node_or_job_change_nothing(
    db: Engine, api_coordinator: Coordinator
) -> None:
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        world = build_world(db, api_coordinator)
        _give_passwords(db, world)
        posts = [
            (f"/nodes/{world.node_id}", {"name": "stolen", "max_parallel": "64"}),
            (f"/nodes/{world.node_id}/access", {"mode": "public"}),
            (f"/nodes/{world.node_id}/remove", {}),
            (f"/jobs/{world.job_id}/cancel", {}),
            (f"/jobs/{world.job_id}/share", {}),
            (f"/jobs/{world.job_id}/share/revoke", {}),
        ]
        for actor in ("friend", "guild", "other", "anon"):
            _login(client, world, actor)
            # With this session's own CSRF token: the form is valid, the caller is not.
            token = page_csrf_token(client)
            for path, form in posts:
                reply = client.post(
                    path, data={**form, "csrf_token": token}, follow_redirects=False
                )
                assert reply.status_code in (303, 403, 404), (actor, path, reply.status_code)
                if actor == "anon":
                    assert reply.status_code in (303, 403), (path, reply.status_code)
        with read_session(db) as session:
            node = session.get(Node, world.node_id)
            job = session.get(SimJob, world.job_id)
            assert node is not None and node.name == "rig" and node.max_parallel == 2
            assert job is not None and job.status != "cancelled"
            assert job.share_token_hash is None
        # The same form from the owner works (the refusals above were about who asked).
        _login(client, world, "owner")
        token = page_csrf_token(client)
        reply = client.post(
            f"/nodes/{world.node_id}",
            data={"name": "renamed", "max_parallel": "3", "csrf_token": token},
            follow_redirects=False,
        )
        assert reply.status_code == 303
        with read_session(db) as session:
            node = session.get(Node, world.node_id)
            assert node is not None and node.name == "renamed" and node.max_parallel == 3
