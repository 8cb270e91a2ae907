"""What users see of trust: which nodes computed a job and how much of it was checked,
public nodes only on request, a node's trust, and notices about wrong results."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.protocol import Completion, NodeCredentials, NodeInfo
from wowlab_core.testing.conformance import TOY_CONFIG, toy_result

from .conftest import make_account

API = "/api/v1"


def claimed_node(
    api: TestClient, coordinator: Coordinator, headers: dict[str, str], name: str
) -> tuple[int, NodeCredentials]:
    reg = coordinator.register(NodeInfo(name=name, max_parallel=4))
    r = api.post(f"{API}/nodes/claim", json={"code": reg.claim_code}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"], NodeCredentials(reg.node_id, reg.token)


def test_public_nodes_are_opt_in_and_the_job_names_its_helpers(
    api: TestClient, db: Engine, api_coordinator: Coordinator
) -> None:
    alice, mallory = make_account(db, "alice"), make_account(db, "mallory")
    api_coordinator.settings = replace(api_coordinator.settings, lease_seconds=600, verify_rate=0)
    own_id, own = claimed_node(api, api_coordinator, alice.headers, "alice-pc")
    liar_id, liar = claimed_node(api, api_coordinator, mallory.headers, "mallory-pc")
    r = api.put(
        f"{API}/nodes/{liar_id}/access",
        json={"grants": [{"access_type": "public"}]},
        headers=mallory.headers,
    )
    assert r.status_code == 200
    # The default: mine, friends' and guild nodes; a stranger's public node takes nothing.
    r = api.post(
        f"{API}/jobs", json={"config": TOY_CONFIG, "iterations": 40}, headers=alice.headers
    )
    assert r.status_code == 201 and r.json()["allow_public"] is False
    assert api_coordinator.lease(liar, 4) == []
    api.post(f"{API}/jobs/{r.json()['id']}/cancel", headers=alice.headers)
    # Opted in: the public node computes, and its first result is checked by alice's node.
    r = api.post(
        f"{API}/jobs",
        # 20 ms an iteration: chunks of about 5 s are 250 iterations, so the job has 4.
        json={"config": TOY_CONFIG | {"iteration_ms": 20}, "iterations": 1000, "nodes": "all"},
        headers=alice.headers,
    )
    job = r.json()
    assert job["allow_public"] is True
    leases = api_coordinator.lease(liar, 4)
    assert len(leases) == 4
    lies = [
        Completion(le.chunk_id, le.lease_token, toy_result(replace(le, seed=le.seed + 1)))
        for le in leases
    ]
    api_coordinator.touch(own)  # online (a loaded machine may have been slow to get here)
    api_coordinator.complete(liar, lies)
    detail = api.get(f"{API}/jobs/{job['id']}", headers=alice.headers).json()
    assert detail["progress"]["chunks_verify"] == 1
    assert [n["name"] for n in detail["nodes"]] == ["mallory-pc"]
    assert detail["unverified_share"] > 0
    while leases := api_coordinator.lease(own, 4):
        api_coordinator.complete(
            own, [Completion(le.chunk_id, le.lease_token, toy_result(le)) for le in leases]
        )
    assert api_coordinator.settle()  # merged after the last completing call returned
    detail = api.get(f"{API}/jobs/{job['id']}", headers=alice.headers).json()
    assert detail["status"] == "completed"
    assert [(n["name"], n["flagged"]) for n in detail["nodes"]] == [("alice-pc", False)]
    assert detail["unverified_share"] == 0
    # The liar's page shows the flag to its owner; both people got a notice.
    node = api.get(f"{API}/nodes/{liar_id}", headers=mallory.headers).json()
    assert node["flagged_at"] is not None and "did not match" in node["flag_reason"]
    assert node["trust_score"] == 0 and node["trusted"] is False
    mine = api.get(f"{API}/nodes/{own_id}", headers=alice.headers).json()
    assert mine["engines"] == {"toy": "1"} or mine["engines"] is None
    for account, kind in ((mallory, "node-flagged"), (alice, "wrong-result")):
        notices = api.get(f"{API}/notices?unread=true", headers=account.headers).json()
        assert [n["kind"] for n in notices] == [kind]
        assert api.post(f"{API}/notices/read", json={}, headers=account.headers).json() == {
            "marked": 1
        }
        assert api.get(f"{API}/notices?unread=true", headers=account.headers).json() == []
    # Nobody reads another user's notices.
    assert api.get(f"{API}/notices", headers=alice.headers).json()[0]["kind"] == "wrong-result"


def test_an_admin_clears_a_nodes_flag(sqlite_db: Engine) -> None:
    from wowlab_core.db import read_session, write_session
    from wowlab_core.models import Node, User, utcnow

    with write_session(sqlite_db) as s:
        owner = User(username="mallory")
        s.add(owner)
        s.flush()
        node = Node(
            name="rig", token_hash="x" * 64, user_id=owner.id, flagged_at=utcnow(),
            flag_reason="its result did not match", trust_score=0,
        )  # fmt: skip
        s.add(node)
        s.commit()
        node_id = node.id
    url = sqlite_db.url.render_as_string(hide_password=False)

    def wowlab(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "wowlab_core", "admin", *args, "--database-url", url]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    done = wowlab("clear-flag", str(node_id))
    assert done.returncode == 0, done.stderr
    assert "may run others' jobs again (it was flagged: its result did not match)" in done.stdout
    with read_session(sqlite_db) as s:
        row = s.get(Node, node_id)
        assert row is not None and row.flagged_at is None and row.flag_reason is None
    missing = wowlab("clear-flag", "999")
    assert missing.returncode != 0 and missing.stderr.strip() == "error: no node with id 999"


def test_owners_set_labels_that_access_rules_see(
    api: TestClient, db: Engine, api_coordinator: Coordinator
) -> None:
    alice, bob = make_account(db, "alice"), make_account(db, "bob")
    node_id, _ = claimed_node(api, api_coordinator, alice.headers, "rig")
    r = api.patch(
        f"{API}/nodes/{node_id}", json={"labels": ["no-raid", " fast "]}, headers=alice.headers
    )
    assert r.status_code == 200 and r.json()["labels"] == ["fast", "no-raid"]
    r = api.patch(f"{API}/nodes/{node_id}", json={"labels": ["x" * 65]}, headers=alice.headers)
    assert r.status_code == 422 and r.json()["field"] == "labels"
    r = api.patch(f"{API}/nodes/{node_id}", json={"labels": []}, headers=bob.headers)
    assert r.status_code in (403, 404)
    assert api.get(f"{API}/nodes/{node_id}", headers=alice.headers).json()["labels"] == [
        "fast",
        "no-raid",
    ]
