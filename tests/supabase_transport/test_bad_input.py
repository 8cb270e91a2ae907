"""Bad input to the node functions gets an error and changes nothing; the gateway's
answers have PostgREST's statuses and ``{code, message, details, hint}`` bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.errors import AuthenticationFailed, RequestTooLarge
from wowlab_core.protocol import Completion, Heartbeat, NodeCredentials, Outcome
from wowlab_core.testing.conformance import registered_node, toy_result
from wowlab_transport_supabase.client import SupabaseTransport
from wowlab_transport_supabase.testing import jwt
from wowlab_transport_supabase.testing.gateway import RpcGateway
from wowlab_transport_supabase.testing.harness import harness_for

pytestmark = pytest.mark.anyio

TABLES = ("sim_chunks", "sim_jobs", "chunk_leases", "notices", "sim_configs", "node_access")


def snapshot(engine: Engine, *, nodes: bool = False) -> dict[str, Any]:
    """Every row of the tables a bad call must not change."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in (*TABLES, "nodes") if nodes else TABLES:
            out[table] = sorted(
                map(tuple, conn.execute(sa.text(f"select * from {table}")).all()), key=repr
            )
    return out


async def test_bad_node_input_is_refused_and_changes_nothing(
    sql_coordinator: Coordinator,
    make_transport: Callable[[], SupabaseTransport],
    supabase_db: Engine,
) -> None:
    harness = harness_for(sql_coordinator, make_transport)
    transport = make_transport()
    try:
        creds = await registered_node(harness, transport)
        other = await registered_node(harness, transport, name="other")
        harness.submit(40, chunks=4)
        first, second = await transport.lease(creds, 2)
        before = snapshot(supabase_db, nodes=True)

        # A wrong node token: an error, and nothing at all changes (not even presence).
        wrong = NodeCredentials(creds.node_id, "not-the-token")
        with pytest.raises(AuthenticationFailed):
            await transport.lease(wrong, 4)
        with pytest.raises(AuthenticationFailed):
            await transport.heartbeat(wrong, Heartbeat())
        with pytest.raises(AuthenticationFailed):
            await transport.complete(
                wrong, [Completion(first.chunk_id, first.lease_token, toy_result(first))]
            )
        assert snapshot(supabase_db, nodes=True) == before

        # An oversized result: refused before anything is looked at (413).
        huge = toy_result(first)
        huge["metrics"] = {f"m{i:07d}": i for i in range(60_000)}
        with pytest.raises(RequestTooLarge):
            await transport.complete(creds, [Completion(first.chunk_id, first.lease_token, huge)])
        assert snapshot(supabase_db, nodes=True) == before

        before = snapshot(supabase_db)
        # A forged lease token, and another node's lease.
        [forged] = await transport.complete(
            creds, [Completion(first.chunk_id, "forged-token", toy_result(first))]
        )
        [stolen] = await transport.complete(
            other, [Completion(second.chunk_id, second.lease_token, toy_result(second))]
        )
        # A result for a chunk never leased (by anyone), and for no chunk at all.
        never = max(c.id or 0 for c in harness.chunks(first.job_id))
        assert never not in (first.chunk_id, second.chunk_id)
        [unleased] = await transport.complete(
            creds, [Completion(never, first.lease_token, toy_result(first))]
        )
        [missing] = await transport.complete(
            creds, [Completion(999_999, first.lease_token, toy_result(first))]
        )
        for outcome in (forged, stolen, unleased, missing):
            assert outcome.outcome == Outcome.REJECTED.value and outcome.detail
        assert snapshot(supabase_db) == before
        # The real results still count.
        outcomes = await transport.complete(
            creds,
            [Completion(le.chunk_id, le.lease_token, toy_result(le)) for le in (first, second)],
        )
        assert [o.outcome for o in outcomes] == [Outcome.ACCEPTED.value] * 2
    finally:
        await transport.aclose()


def _post(gateway: RpcGateway, function: str, body: Any, token: str | None) -> httpx.Response:
    headers = {"apikey": jwt.anon_key(), "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{gateway.url}/rest/v1/rpc/{function}", json=body, headers=headers)


def _is_postgrest_error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "details", "hint"}
    return body


def test_gateway_answers_as_postgrest_does(gateway: RpcGateway) -> None:
    anon = jwt.anon_key()
    ok = _post(gateway, "node_register", {"p_info": {"name": "n"}}, anon)
    assert ok.status_code == 200 and set(ok.json()) >= {"node_id", "token", "claim_code"}
    node_id = ok.json()["node_id"]

    bad_token = _post(
        gateway, "node_lease", {"p_node_id": node_id, "p_token": "x", "p_max_chunks": 1}, anon
    )
    body = _is_postgrest_error(bad_token)
    assert bad_token.status_code == 401 and body["code"] == "AuthenticationFailed"

    bad_value = _post(gateway, "node_register", {"p_info": {"name": ""}}, anon)
    body = _is_postgrest_error(bad_value)
    assert bad_value.status_code == 422 and body["details"] == "name"

    nothing = _post(gateway, "no_such_function", {}, anon)
    assert nothing.status_code == 404 and _is_postgrest_error(nothing)["code"] == "PGRST202"

    # A user may not call the node functions, nor anon the user functions (42501).
    user = jwt.user_session("00000000-0000-0000-0000-000000000001")
    forbidden = _post(gateway, "node_register", {"p_info": {"name": "n"}}, user)
    assert forbidden.status_code == 403 and _is_postgrest_error(forbidden)["code"] == "42501"
    anonymous = _post(gateway, "claim_node", {"p_code": "ABCDEF"}, anon)
    assert anonymous.status_code == 401 and _is_postgrest_error(anonymous)["code"] == "42501"

    forged = jwt.sign({"role": "service_role"}, secret="not-the-project-secret")
    refused = _post(gateway, "node_register", {"p_info": {"name": "n"}}, forged)
    assert refused.status_code == 401 and _is_postgrest_error(refused)["code"] == "PGRST301"

    wrong_type = _post(
        gateway, "node_lease", {"p_node_id": "one", "p_token": "x", "p_max_chunks": 1}, anon
    )
    assert wrong_type.status_code == 400 and _is_postgrest_error(wrong_type)["code"] == "22P02"
