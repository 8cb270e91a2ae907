"""The functions signed-in users call through the Data API: claim_node and cancel_job."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import Engine

from wowlab_transport_supabase.testing import jwt
from wowlab_transport_supabase.testing.gateway import RpcGateway


def _rpc(gateway: RpcGateway, function: str, body: dict[str, Any], token: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/rest/v1/rpc/{function}",
        json=body,
        headers={"apikey": jwt.anon_key(), "Authorization": f"Bearer {token}"},
    )


def _user(engine: Engine, name: str) -> str:
    auth_id = str(uuid.uuid4())
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email, raw_user_meta_data) values (%s, %s, %s)",
            (auth_id, f"{name}@example.org", json.dumps({"username": name})),
        )
    return auth_id


def test_claim_node_claims_once_and_is_rate_limited(
    gateway: RpcGateway, supabase_db: Engine
) -> None:
    anon = jwt.anon_key()
    reg = _rpc(gateway, "node_register", {"p_info": {"name": "mine"}}, anon).json()
    session = jwt.user_session(_user(supabase_db, "ada"))

    wrong = _rpc(gateway, "claim_node", {"p_code": "ZZZ-ZZZ"}, session)
    assert wrong.status_code == 200 and wrong.json()["error"] == "ClaimCodeInvalid"
    typo = _rpc(gateway, "claim_node", {"p_code": "0O1I"}, session)
    assert typo.json()["error"] == "ClaimCodeInvalid" and "like ABC-234" in typo.json()["detail"]

    code = reg["claim_code"]
    claimed = _rpc(
        gateway,
        "claim_node",
        {"p_code": f"{code[:3]}-{code[3:].lower()}", "p_name": "desk"},
        session,
    )
    assert claimed.status_code == 200, claimed.text
    assert claimed.json() == {"claimed": True, "node_id": reg["node_id"], "name": "desk"}
    status = _rpc(
        gateway, "node_claim_status", {"p_node_id": reg["node_id"], "p_token": reg["token"]}, anon
    ).json()
    assert status["claimed"] and status["owner"] == "ada" and status["name"] == "desk"
    again = _rpc(
        gateway, "claim_node", {"p_code": code}, jwt.user_session(_user(supabase_db, "eve"))
    )
    assert again.json()["error"] == "ClaimCodeInvalid"  # single use

    # Guessing is rate-limited per user (10 a minute), and the failed guesses count.
    answers = [_rpc(gateway, "claim_node", {"p_code": "ABCDEF"}, session) for _ in range(10)]
    assert answers[-1].status_code == 429 and answers[-1].json()["code"] == "RateLimited"


def test_cancel_job_only_for_its_owner(gateway: RpcGateway, supabase_db: Engine) -> None:
    owner = _user(supabase_db, "owner")
    url = supabase_db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into sim_configs (hash, config, engine, created_at, last_used_at) "
            "values (repeat('c', 64), '{}', 'toy', now(), now())"
        )
        job = conn.execute(
            "insert into sim_jobs (user_id, config_hash, engine, total_iterations, "
            "completed_iterations, seed, status, max_attempts, own_nodes_only, allow_public, "
            "created_at) select a.user_id, repeat('c', 64), 'toy', 10, 0, 1, 'pending', 2, "
            "false, false, now() from wowlab.auth_users a where a.auth_id = %s returning id",
            (owner,),
        ).fetchone()[0]
    stranger = _rpc(
        gateway, "cancel_job", {"p_job_id": job}, jwt.user_session(_user(supabase_db, "stranger"))
    )
    assert stranger.status_code == 404
    assert _rpc(gateway, "cancel_job", {"p_job_id": job}, jwt.user_session(owner)).json() is True
    assert _rpc(gateway, "cancel_job", {"p_job_id": job}, jwt.user_session(owner)).json() is False
    with psycopg.connect(url) as conn:
        assert conn.execute("select status from sim_jobs where id = %s", (job,)).fetchone()[0] == (
            "cancelled"
        )
