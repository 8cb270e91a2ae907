"""Who may call what: every route of the app, called by every kind of caller.

Callers: ``owner`` (alice, who owns the node, the guild and the jobs), ``friend`` (fred,
alice's friend; her node is shared with friends), ``guild`` (gina, a member of alice's
guild; the node is shared with it), ``other`` (olga, a stranger with an unaccepted guild
invitation), ``anon`` (no credentials) and ``node`` (alice's node, with its own token).

The table must name every route the app serves: a new route without an entry fails
:func:`test_every_route_has_an_authorization_entry`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.testing.conformance import TOY_CONFIG
from wowlab_portal.app import create_app

from .conftest import api_settings
from .world import World, build_world

USERS = ("owner", "friend", "guild", "other")
ACTORS = (*USERS, "anon", "node")
ACCOUNT_OF = {"owner": "alice", "friend": "fred", "guild": "gina", "other": "olga"}
#: FastAPI's own documentation routes: public, no data.
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@dataclass(frozen=True)
class Entry:
    """How to call a route, and the status each caller must get."""

    expect: dict[str, int]
    path: dict[str, Callable[[World], Any]] = field(default_factory=dict)
    body: Callable[[World, str], Any] | None = None
    query: dict[str, Any] = field(default_factory=dict)
    #: Each caller needs a world of its own (the first success would change the answer).
    fresh: bool = False


def users(status: int, **overrides: int) -> dict[str, int]:
    """A user route: every user ``status`` unless overridden; anonymous and node 401."""
    return {**dict.fromkeys(USERS, status), "anon": 401, "node": 401, **overrides}


def everyone(status: int) -> dict[str, int]:
    """A public route."""
    return dict.fromkeys(ACTORS, status)


def node_only(status: int) -> dict[str, int]:
    """A node-facing route: only the node's own credentials."""
    return {**dict.fromkeys(ACTORS, 401), "node": status}


OWNER_ONLY_NODE = users(404, owner=200, friend=403, guild=403)
OWNER_ONLY_JOB = users(404, owner=200)
NODE = {"node_id": lambda w: w.node_id}
JOB = {"job_id": lambda w: w.job_id}
GUILD = {"guild_id": lambda w: w.guild_id}
ALICE = {"username": lambda w: w.accounts["alice"].user.username}

TABLE: dict[tuple[str, str], Entry] = {
    # accounts
    ("POST", "/api/v1/auth/signup"): Entry(
        everyone(201), body=lambda w, a: {"username": f"new-{a}-{w.tag}", "password": "x" * 12}
    ),
    ("POST", "/api/v1/auth/login"): Entry(
        everyone(401),  # alice has no password: the caller changes nothing
        body=lambda w, a: {"username": w.accounts["alice"].user.username, "password": "x" * 12},
    ),
    ("POST", "/api/v1/auth/logout"): Entry(users(204)),
    ("POST", "/api/v1/auth/logout-all"): Entry(users(204)),
    ("POST", "/api/v1/auth/password"): Entry(
        users(401),  # the world's accounts have no password: the current one is wrong
        body=lambda w, a: {"current_password": "x" * 12, "new_password": "y" * 12},
    ),
    ("GET", "/api/v1/me"): Entry(users(200)),
    ("GET", "/api/v1/tokens"): Entry(users(200)),
    ("POST", "/api/v1/tokens"): Entry(users(201), body=lambda w, a: {"name": "ci"}),
    ("DELETE", "/api/v1/tokens/{token_id}"): Entry(
        users(404, owner=204), path={"token_id": lambda w: w.accounts["alice"].token_id}
    ),
    # guilds and friends
    ("GET", "/api/v1/guilds"): Entry(users(200)),
    ("POST", "/api/v1/guilds"): Entry(users(201), body=lambda w, a: {"name": f"g-{a}-{w.tag}"}),
    ("GET", "/api/v1/guilds/{guild_id}"): Entry(users(404, owner=200, guild=200), path=GUILD),
    ("POST", "/api/v1/guilds/{guild_id}/invites"): Entry(
        users(404, owner=201, guild=403),
        path=GUILD,
        body=lambda w, a: {"username": w.accounts["fred"].user.username},
    ),
    ("POST", "/api/v1/guilds/{guild_id}/join"): Entry(users(404, other=200), path=GUILD),
    ("POST", "/api/v1/guilds/{guild_id}/leave"): Entry(
        users(404, owner=204, guild=204), path=GUILD
    ),
    ("GET", "/api/v1/friends"): Entry(users(200)),
    ("POST", "/api/v1/friends"): Entry(
        users(201, owner=422), body=lambda w, a: {"username": w.accounts["alice"].user.username}
    ),
    ("POST", "/api/v1/friends/{username}/accept"): Entry(users(404, friend=200), path=ALICE),
    ("DELETE", "/api/v1/friends/{username}"): Entry(users(404, friend=204), path=ALICE),
    # nodes
    ("GET", "/api/v1/nodes"): Entry(users(200)),
    ("GET", "/api/v1/nodes/available"): Entry(users(200)),
    ("GET", "/api/v1/nodes/claim/{code}"): Entry(
        users(200), path={"code": lambda w: w.pending_code}
    ),
    ("POST", "/api/v1/nodes/claim"): Entry(
        users(201), body=lambda w, a: {"code": w.pending_code}, fresh=True
    ),
    ("GET", "/api/v1/nodes/{node_id}"): Entry(users(404, owner=200, friend=200, guild=200), NODE),
    ("PATCH", "/api/v1/nodes/{node_id}"): Entry(
        OWNER_ONLY_NODE, NODE, body=lambda w, a: {"max_parallel": 3}
    ),
    ("GET", "/api/v1/nodes/{node_id}/access"): Entry(OWNER_ONLY_NODE, NODE),
    ("PUT", "/api/v1/nodes/{node_id}/access"): Entry(
        OWNER_ONLY_NODE, NODE, body=lambda w, a: {"grants": [{"access_type": "public"}]}
    ),
    ("DELETE", "/api/v1/nodes/{node_id}"): Entry(
        users(404, owner=204, friend=403, guild=403), NODE
    ),
    # jobs
    ("GET", "/api/v1/examples"): Entry(users(200)),
    ("POST", "/api/v1/jobs"): Entry(
        users(201), body=lambda w, a: {"config": TOY_CONFIG, "iterations": 20}
    ),
    ("GET", "/api/v1/jobs"): Entry(users(200)),
    ("GET", "/api/v1/jobs/{job_id}"): Entry(OWNER_ONLY_JOB, JOB),
    ("GET", "/api/v1/jobs/{job_id}/report"): Entry(
        OWNER_ONLY_JOB, {"job_id": lambda w: w.done_job_id}
    ),
    ("POST", "/api/v1/jobs/{job_id}/cancel"): Entry(OWNER_ONLY_JOB, JOB),
    ("POST", "/api/v1/jobs/{job_id}/share"): Entry(users(404, owner=201), JOB),
    ("DELETE", "/api/v1/jobs/{job_id}/share"): Entry(OWNER_ONLY_JOB, JOB),
    # notices
    ("GET", "/api/v1/notices"): Entry(users(200)),
    ("POST", "/api/v1/notices/read"): Entry(users(200), body=lambda w, a: {}),
    # public
    ("GET", "/healthz"): Entry(everyone(200)),
    ("GET", "/metrics"): Entry(everyone(200)),
    # node-facing (the HTTP transport)
    ("POST", "/api/v1/node/register"): Entry(
        everyone(201), body=lambda w, a: {"name": f"n-{a}", "max_parallel": 1}
    ),
    ("GET", "/api/v1/node/claim-status"): Entry(node_only(200)),
    ("POST", "/api/v1/node/heartbeat"): Entry(node_only(200), body=lambda w, a: {"running": []}),
    ("POST", "/api/v1/node/lease"): Entry(node_only(200), body=lambda w, a: {"max_chunks": 1}),
    ("GET", "/api/v1/node/config/{config_hash}"): Entry(
        node_only(200), path={"config_hash": lambda w: w.extra["config_hash"]}
    ),
    ("POST", "/api/v1/node/complete"): Entry(node_only(200), body=lambda w, a: {"completions": []}),
    ("POST", "/api/v1/node/fail"): Entry(
        node_only(409),  # a lease it does not hold: refused, but not as unauthenticated
        body=lambda w, a: {"chunk_id": w.job_id, "lease_token": "not-mine", "error": "x"},
    ),
    ("POST", "/api/v1/node/release"): Entry(
        node_only(200), body=lambda w, a: {"chunk_ids": [], "lease_token": "none"}
    ),
    ("POST", "/api/v1/node/offline"): Entry(node_only(204)),
    ("GET", "/api/v1/node/wait-for-work"): Entry(node_only(200), query={"timeout": 0}),
}

SAFE = {"GET", "HEAD"}
#: Callers of a changing request, the owner last: others' attempts must change nothing
#: the owner's answer depends on.
CALL_ORDER = ("anon", "node", "other", "guild", "friend", "owner")


def app_routes() -> set[tuple[str, str]]:
    app = create_app(api_settings())
    found = set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.route, APIRoute) and not context.route.include_in_schema:
            continue  # the HTML pages (wowlab_portal.web): covered by tests/portal/test_web_*
        if context.path == "/static":
            continue
        if isinstance(context.route, APIRoute):
            found |= {(m, context.path) for m in context.methods or ()}
        else:
            assert context.path in DOCS, context.path
    return found


def test_every_route_has_an_authorization_entry() -> None:
    routes = app_routes()
    assert sorted(routes - set(TABLE)) == [], "routes without an authorization entry"
    assert sorted(set(TABLE) - routes) == [], "entries for routes that do not exist"
    for entry in TABLE.values():
        assert set(entry.expect) == set(ACTORS)


def _call(client: TestClient, world: World, key: tuple[str, str], actor: str) -> int:
    method, template = key
    entry = TABLE[key]
    path = template.format(**{name: get(world) for name, get in entry.path.items()})
    body = entry.body(world, actor) if entry.body is not None else None
    headers = world.headers(ACCOUNT_OF.get(actor, actor))
    client.cookies.clear()
    response = client.request(method, path, json=body, params=entry.query, headers=headers)
    assert response.status_code < 500, (key, actor, response.text)
    return response.status_code


def test_every_route_answers_each_caller_as_the_table_says(
    db: Engine, api_coordinator: Coordinator
) -> None:
    # Every caller comes from one address: no throttling of the repeated wrong logins.
    settings = api_settings(claim_limit_per_address_per_minute=1000, login_free_failures=100)
    wrong = []
    with TestClient(create_app(settings, coordinator=api_coordinator)) as client:

        def fresh() -> World:
            world = build_world(db, api_coordinator)
            # The node fetches a config it holds a lease on.
            lease = api_coordinator.lease(world.node, 1)
            world.extra["config_hash"] = lease[0].config_hash if lease else ""
            return world

        shared = fresh()  # reads change nothing: one world for all of them
        for key in sorted(TABLE):
            world = shared if key[0] in SAFE else fresh()
            for actor in CALL_ORDER:
                if TABLE[key].fresh and actor != CALL_ORDER[0]:
                    world = fresh()
                got = _call(client, world, key, actor)
                if got != TABLE[key].expect[actor]:
                    wrong.append(
                        f"{key[0]} {key[1]} as {actor}: {got}, not {TABLE[key].expect[actor]}"
                    )
    assert wrong == []
