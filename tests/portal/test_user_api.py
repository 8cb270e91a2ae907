"""Nodes, jobs, guilds and friends over the user API, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.hookspecs import hookimpl
from wowlab_core.models import User
from wowlab_core.protocol import NodeCredentials, NodeInfo
from wowlab_core.testing.conformance import TOY_CONFIG
from wowlab_portal.app import create_app

from .conftest import api_settings, make_account
from .world import build_world, run_all_chunks

API = "/api/v1"


def test_claim_preview_then_claim_share_and_remove(
    api: TestClient, db: Engine, api_coordinator: Coordinator
) -> None:
    alice, bob = make_account(db, "alice"), make_account(db, "bob")
    reg = api_coordinator.register(NodeInfo(name="rig", max_parallel=2, cores=8, platform="linux"))
    typed = f"{reg.claim_code[:3].lower()}-{reg.claim_code[3:].lower()}"
    r = api.get(f"{API}/nodes/claim/{typed}", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json() | {"expires_at": None} == {
        "code": f"{reg.claim_code[:3]}-{reg.claim_code[3:]}",
        "name": "rig",
        "platform": "linux",
        "cores": 8,
        "version": None,
        "expires_at": None,
    }
    r = api.get(f"{API}/nodes/claim/ABCDEZ", headers=alice.headers)
    assert r.status_code == 404 and r.json()["error"] == "ClaimCodeInvalid"
    r = api.post(f"{API}/nodes/claim", json={"code": typed, "name": "desk"}, headers=alice.headers)
    assert r.status_code == 201, r.text
    node = r.json()
    assert node["name"] == "desk" and node["mine"] and node["owner"] == "alice"
    assert api_coordinator.claim_status(NodeCredentials(reg.node_id, reg.token)).claimed
    # Single use: the code is gone.
    r = api.post(f"{API}/nodes/claim", json={"code": typed}, headers=bob.headers)
    assert r.status_code == 404
    assert [n["name"] for n in api.get(f"{API}/nodes", headers=alice.headers).json()] == ["desk"]
    assert api.get(f"{API}/nodes", headers=bob.headers).json() == []

    nid = node["id"]
    r = api.patch(
        f"{API}/nodes/{nid}", json={"name": "den", "max_parallel": 4}, headers=alice.headers
    )
    assert r.json()["name"] == "den" and r.json()["max_parallel"] == 4
    assert api.get(f"{API}/nodes/available", headers=bob.headers).json()["nodes"] == []
    r = api.put(
        f"{API}/nodes/{nid}/access",
        json={"grants": [{"access_type": "user", "username": "bob"}]},
        headers=alice.headers,
    )
    assert r.status_code == 200 and r.json() == [
        {"access_type": "user", "target_id": bob.id, "target_name": "bob"}
    ]
    available = api.get(f"{API}/nodes/available", headers=bob.headers).json()
    assert [n["name"] for n in available["nodes"]] == ["den"] and not available["nodes"][0]["mine"]
    assert available["capacity"] == {"nodes": 1, "workers": 4, "sims_per_second": 0.0}
    # Bob may use it but not change it.
    assert (
        api.patch(f"{API}/nodes/{nid}", json={"name": "x"}, headers=bob.headers).status_code == 403
    )
    r = api.put(
        f"{API}/nodes/{nid}/access",
        json={"grants": [{"access_type": "guild", "guild_id": 999}]},
        headers=alice.headers,
    )
    assert r.status_code == 404 and r.json()["field"] == "grants.0.guild_id"
    r = api.put(f"{API}/nodes/{nid}/access", json={"grants": []}, headers=alice.headers)
    assert r.json() == [{"access_type": "owner", "target_id": None, "target_name": None}]
    assert api.get(f"{API}/nodes/{nid}", headers=bob.headers).status_code == 404
    assert api.delete(f"{API}/nodes/{nid}", headers=alice.headers).status_code == 204
    assert api.get(f"{API}/nodes", headers=alice.headers).json() == []


def test_claim_attempts_are_rate_limited(db: Engine, api_coordinator: Coordinator) -> None:
    alice = make_account(db, "alice")
    settings = api_settings(claim_limit_per_minute=3)
    with TestClient(create_app(settings, coordinator=api_coordinator)) as client:
        for _ in range(2):
            assert client.get(f"{API}/nodes/claim/ABCDEZ", headers=alice.headers).status_code == 404
        r = client.post(f"{API}/nodes/claim", json={"code": "ABCDEZ"}, headers=alice.headers)
        assert r.status_code == 404
        r = client.get(f"{API}/nodes/claim/ABCDEZ", headers=alice.headers)
        assert r.status_code == 429 and r.json()["error"] == "RateLimited"
        assert "claim attempts" in r.json()["detail"]


def test_submit_follow_and_download_a_job_run_by_a_shared_node(
    api: TestClient, db: Engine, api_coordinator: Coordinator
) -> None:
    world = build_world(db, api_coordinator)
    gina = world.headers("gina")
    r = api.post(f"{API}/jobs", json={"config": TOY_CONFIG, "iterations": 400}, headers=gina)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "pending" and job["progress"]["total_iterations"] == 400
    # Only mine: gina has no node, so nothing would run it; alice's node skips it.
    r = api.post(
        f"{API}/jobs", json={"config": TOY_CONFIG, "iterations": 50, "nodes": "mine"}, headers=gina
    )
    mine_only = r.json()["id"]
    run_all_chunks(api_coordinator, world.node)
    done = api.get(f"{API}/jobs/{job['id']}", headers=gina).json()
    assert done["status"] == "completed", done
    assert done["report"]["iterations"] == 400 and done["dps"]["mean"] > 0
    listed = {j["id"]: j for j in api.get(f"{API}/jobs", headers=gina).json()}
    assert listed[job["id"]]["dps"] == done["dps"] and listed[mine_only]["status"] == "pending"
    r = api.get(f"{API}/jobs/{job['id']}/report", headers=gina)
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    assert r.json() == done["report"]
    # Alice owns the node, not the job.
    assert api.get(f"{API}/jobs/{job['id']}", headers=world.headers("alice")).status_code == 404
    r = api.post(f"{API}/jobs/{mine_only}/cancel", headers=gina)
    assert r.json() == {"cancelled": True, "status": "cancelled"}
    r = api.post(f"{API}/jobs/{mine_only}/cancel", headers=gina)
    assert r.json() == {"cancelled": False, "status": "cancelled"}
    r = api.get(f"{API}/jobs/{mine_only}/report", headers=gina)
    assert r.status_code == 404 and "cancelled" in r.json()["detail"]


def test_job_validation_errors_name_the_field(api: TestClient, db: Engine) -> None:
    alice = make_account(db, "alice").headers
    cases = [
        ({"iterations": 10}, "config"),
        ({"config": TOY_CONFIG, "example": "x", "iterations": 10}, "config"),
        ({"example": "no_such_example", "iterations": 10}, "example"),
        ({"config": TOY_CONFIG}, "iterations"),
        ({"config": TOY_CONFIG, "iterations": 0}, "iterations"),
        ({"config": TOY_CONFIG, "iterations": "many"}, "iterations"),
        ({"config": TOY_CONFIG, "iterations": 10, "target_error": 99}, "target_error"),
        ({"config": {"base_dps": -5}, "iterations": 10}, "config.base_dps"),
        ({"config": {"bogus": 1}, "iterations": 10}, "config.bogus"),
        ({"config": TOY_CONFIG, "iterations": 10, "engine": "nope"}, "engine"),
        ({"config": TOY_CONFIG, "iterations": 10, "nodes": "everyone"}, "nodes"),
    ]
    for body, field in cases:
        r = api.post(f"{API}/jobs", json=body, headers=alice)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field, (body, r.json())
    assert api.get(f"{API}/jobs", headers=alice).json() == []
    r = api.post(f"{API}/jobs", json={"config": TOY_CONFIG, "target_error": 1.0}, headers=alice)
    assert r.status_code == 201 and r.json()["total_iterations"] == 1000


def test_guilds_invite_join_leave_and_friends(api: TestClient, db: Engine) -> None:
    alice, bob, carol = (make_account(db, n) for n in ("alice", "bob", "carol"))
    r = api.post(f"{API}/guilds", json={"name": "Raiders"}, headers=alice.headers)
    assert r.status_code == 201
    gid = r.json()["id"]
    assert r.json()["members"] == [{"user_id": alice.id, "username": "alice", "role": "owner"}]
    assert (
        api.post(f"{API}/guilds", json={"name": "raiders"}, headers=bob.headers).status_code == 422
    )
    # Not a member: cannot see or invite; a member who is not owner cannot invite.
    assert api.get(f"{API}/guilds/{gid}", headers=bob.headers).status_code == 404
    assert api.post(f"{API}/guilds/{gid}/join", headers=bob.headers).status_code == 404
    r = api.post(f"{API}/guilds/{gid}/invites", json={"username": "bob"}, headers=alice.headers)
    assert r.status_code == 201
    assert api.get(f"{API}/guilds", headers=bob.headers).json()["invites"][0]["id"] == gid
    assert api.post(f"{API}/guilds/{gid}/join", headers=bob.headers).status_code == 200
    r = api.post(f"{API}/guilds/{gid}/invites", json={"username": "carol"}, headers=bob.headers)
    assert r.status_code == 403
    members = api.get(f"{API}/guilds/{gid}", headers=bob.headers).json()["members"]
    assert [(m["username"], m["role"]) for m in members] == [("alice", "owner"), ("bob", "member")]
    # The owner leaves: bob inherits; the last one out ends the guild.
    assert api.post(f"{API}/guilds/{gid}/leave", headers=alice.headers).status_code == 204
    assert api.get(f"{API}/guilds", headers=bob.headers).json()["guilds"][0]["role"] == "owner"
    assert api.post(f"{API}/guilds/{gid}/leave", headers=bob.headers).status_code == 204
    assert api.get(f"{API}/guilds/{gid}", headers=bob.headers).status_code == 404

    r = api.post(f"{API}/friends", json={"username": "bob"}, headers=alice.headers)
    assert r.status_code == 201 and r.json()["status"] == "outgoing"
    assert api.get(f"{API}/friends", headers=bob.headers).json()[0]["status"] == "incoming"
    assert api.post(f"{API}/friends/alice/accept", headers=carol.headers).status_code == 404
    assert (
        api.post(f"{API}/friends/alice/accept", headers=bob.headers).json()["status"] == "accepted"
    )
    assert api.get(f"{API}/friends", headers=alice.headers).json()[0]["status"] == "accepted"
    r = api.post(f"{API}/friends", json={"username": "alice"}, headers=alice.headers)
    assert r.status_code == 422
    assert api.delete(f"{API}/friends/bob", headers=alice.headers).status_code == 204
    assert api.get(f"{API}/friends", headers=bob.headers).json() == []


def test_metrics_count_by_status_in_prometheus_text(
    api: TestClient, db: Engine, api_coordinator: Coordinator
) -> None:
    world = build_world(db, api_coordinator)
    r = api.post(f"{API}/node/lease", json={"max_chunks": 1}, headers=world.headers("node"))
    assert r.status_code == 200 and len(r.json()["leases"]) == 1
    r = api.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    lines = set(r.text.splitlines())
    for expected in (
        'wowlab_nodes{status="online"} 1',
        'wowlab_nodes{status="pending"} 1',
        'wowlab_jobs{status="completed"} 1',
        'wowlab_chunks{status="leased"} 1',
        "wowlab_chunk_leases_total 1",
        'wowlab_lease_request_seconds_bucket{le="+Inf"} 1',
        "wowlab_lease_request_seconds_count 1",
        "# TYPE wowlab_lease_request_seconds histogram",
    ):
        assert expected in lines, (expected, r.text)


def test_removing_a_node_announces_wowlab_node_removed(
    api: TestClient, db: Engine, api_coordinator: Coordinator, register_plugin: Any
) -> None:
    seen: list[tuple[int, str | None]] = []

    class Listener:
        @hookimpl
        def wowlab_node_removed(self, node_id: int, user: User | None) -> None:
            seen.append((node_id, user.username if user else None))

    register_plugin(Listener())
    alice, bob = make_account(db, "alice"), make_account(db, "bob")
    reg = api_coordinator.register(NodeInfo(name="rig"))
    r = api.post(f"{API}/nodes/claim", json={"code": reg.claim_code}, headers=alice.headers)
    assert r.status_code == 201, r.text
    assert api.delete(f"{API}/nodes/{reg.node_id}", headers=bob.headers).status_code == 404
    assert seen == []
    assert api.delete(f"{API}/nodes/{reg.node_id}", headers=alice.headers).status_code == 204
    assert seen == [(reg.node_id, "alice")]
