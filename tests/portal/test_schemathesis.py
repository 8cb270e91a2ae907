"""Schemathesis against the served OpenAPI of a portal on real SQLite and PostgreSQL databases.

The portal is served by uvicorn (``server.serve``); its ``/openapi.json`` is loaded over
HTTP and every operation is called with generated requests, valid and invalid: the user
API as a user with an API token, the node API with a node's credentials. Each answer must
not be a server error, must have a documented status code, and must match the documented
schema of that status code (error answers included: ``{"error", "detail", "field"}``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation, BaseSchema
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import write_session
from wowlab_core.nodes import claim_node
from wowlab_core.plugins import Hooks, build_registry
from wowlab_core.protocol import NodeInfo
from wowlab_core.testing.databases import fresh_postgres_database, fresh_sqlite_database
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_core.testing.toy_engine import toy_engine_plugin
from wowlab_portal.accounts import create_api_token
from wowlab_portal.app import create_app

from .conftest import api_settings
from .server import serve
from .world import World, build_world

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
#: Bounds that keep the whole module well under a minute.
BOUNDED = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def _operations(*, node: bool) -> list[str]:
    """Labels (``GET /api/v1/me``) of the operations to test, from the app's own OpenAPI."""
    spec = create_app(api_settings()).openapi()
    return [
        f"{method.upper()} {path}"
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
        if ("node" in operation.get("tags", ())) == node
    ]


@dataclass
class Served:
    url: str
    world: World
    schema: BaseSchema

    def operation(self, label: str) -> APIOperation:
        method, path = label.split(" ", 1)
        return self.schema[path][method]


@contextmanager
def _database(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if kind == "postgres":
        with fresh_postgres_database() as db:
            yield db
    else:
        with fresh_sqlite_database(str(tmp_path_factory.mktemp("schemathesis"))) as db:
            yield db


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One portal per database for the module (each test runs many requests; it sees the
    others' writes)."""
    registry = build_registry(load_entry_points=False)
    registry.pm.register(toy_engine_plugin, name="toy-engine")
    hooks = Hooks(registry.pm)
    with _database(request.param, tmp_path_factory) as db:
        coordinator = Coordinator(db, hooks=hooks, settings=TEST_SETTINGS)
        world = build_world(db, coordinator)
        # Generated ids are small more often than not: keep alice's token (the one the run
        # authenticates with) out of their reach, so that it is unlikely to be revoked.
        with write_session(db) as session:
            for who in ("fred", "gina", "olga"):
                for i in range(30):
                    create_api_token(session, user=world.accounts[who].user, name=f"pad-{i}")
            session.commit()
            new = create_api_token(session, user=world.accounts["alice"].user, name="fuzz")
            session.commit()
            world.extra["token"] = new.token
            # The node API's own node, owned by fred: alice's run may remove hers.
            reg = coordinator.register(NodeInfo(name="fuzzed", max_parallel=2, platform="linux"))
            claim_node(session, user=world.accounts["fred"].user, code=reg.claim_code)
            session.commit()
            world.extra["node"] = {
                "Authorization": f"Bearer {reg.token}",
                "X-Wowlab-Node": str(reg.node_id),
            }
        app_settings = api_settings(
            long_poll_max_seconds=0.2, claim_recheck_seconds=0.1, register_limit_per_minute=1000
        )
        with serve(create_app(app_settings, coordinator=coordinator)) as url:
            schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
            yield Served(url, world, schema)


def run(operation: APIOperation, headers: dict[str, str]) -> None:
    """Generated requests, valid and invalid, to one operation; every answer checked."""

    @BOUNDED
    @given(data=st.data())
    def test(data: st.DataObject) -> None:
        mode = data.draw(st.sampled_from(list(GenerationMode)), label="mode")
        case = data.draw(operation.as_strategy(generation_mode=mode))
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=10)

    test()


@pytest.mark.parametrize("label", _operations(node=False))
def test_user_api(label: str, served: Served) -> None:
    """The user API, as a user with an API token."""
    token = served.world.extra["token"]
    run(served.operation(label), {"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("label", _operations(node=True))
def test_node_api(label: str, served: Served) -> None:
    """The node API, with a registered and claimed node's credentials."""
    run(served.operation(label), served.world.extra["node"])


# --- what schemathesis found, pinned -------------------------------------------------------


def test_unparsable_body_is_a_documented_invalid_request(served: Served) -> None:
    """A body that is not UTF-8 JSON: 400 in the wowlab shape, documented (was undocumented)."""
    token = served.world.extra["token"]
    answer = httpx.post(
        f"{served.url}/api/v1/jobs",
        content=b"\xff\xfe{",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "InvalidRequest"
    responses = served.schema.raw_schema["paths"]["/api/v1/jobs"]["post"]["responses"]
    assert {"400", "401", "422"} <= set(responses)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("complete", {"completions": [{"chunk_id": 2**70, "lease_token": "t", "result": {}}]}),
        ("fail", {"chunk_id": -(2**70), "lease_token": "t", "error": "boom"}),
        ("release", {"chunk_ids": [2**64], "lease_token": "t"}),
    ],
)
def test_chunk_ids_beyond_64_bits_are_refused(served: Served, path: str, body: dict) -> None:
    """A chunk id SQL cannot hold is a 422 naming the field (was a 500: integer overflow)."""
    answer = httpx.post(
        f"{served.url}/api/v1/node/{path}", json=body, headers=served.world.extra["node"]
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "InvalidRequest"
    assert "chunk_id" in answer.json()["field"]
