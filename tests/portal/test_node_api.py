"""The node endpoints as a client meets them: credentials, error bodies, long polls."""

from __future__ import annotations

import time
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from wowlab_core.errors import AuthenticationFailed, InvalidRequest, RateLimited
from wowlab_core.http_client import HttpTransport
from wowlab_core.nodes import claim_and_announce
from wowlab_core.protocol import Heartbeat, NodeCredentials, NodeInfo
from wowlab_portal.settings import PortalSettings

from .conftest import Portal

API = "/api/v1/node"


def register(http: httpx.Client, name: str = "n1") -> dict[str, Any]:
    response = http.post(f"{API}/register", json={"name": name, "max_parallel": 2})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def node_headers(reg: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {reg['token']}", "X-Wowlab-Node": str(reg["node_id"])}


def test_missing_or_wrong_credentials_are_401_naming_the_problem(portal: Portal) -> None:
    with httpx.Client(base_url=portal.url) as http:
        reg = register(http)
        cases = [
            ({}, "Authorization", "missing node token"),
            ({"Authorization": "Basic dXNlcjpwdw=="}, "Authorization", "missing node token"),
            ({"Authorization": f"Bearer {reg['token']}"}, "X-Wowlab-Node", "missing or malformed"),
            (
                {"Authorization": f"Bearer {reg['token']}", "X-Wowlab-Node": "1; drop"},
                "X-Wowlab-Node",
                "missing or malformed",
            ),
            (node_headers(reg | {"token": "not-the-token"}), None, "node id or token"),
            (node_headers(reg | {"node_id": reg["node_id"] + 1}), None, "node id or token"),
        ]
        for headers, field, detail in cases:
            for method, path in [("POST", "/heartbeat"), ("GET", "/wait-for-work")]:
                response = http.request(
                    method,
                    API + path,
                    headers=headers,
                    json={"running": []} if method == "POST" else None,
                )
                assert response.status_code == 401, (headers, response.text)
                assert response.headers["WWW-Authenticate"] == "Bearer"
                body = response.json()
                assert body["error"] == "AuthenticationFailed"
                assert body["field"] == field and detail in body["detail"], body
        ok = http.post(f"{API}/heartbeat", headers=node_headers(reg), json={"running": []})
        assert ok.status_code == 200 and ok.json()["status"] == "pending"


def test_malformed_requests_are_422_naming_the_field(portal: Portal) -> None:
    with httpx.Client(base_url=portal.url) as http:
        headers = node_headers(register(http))
        cases: list[tuple[str, str, dict[str, Any], str, str]] = [
            ("POST", "/lease", {"json": {"max_chunks": "lots"}}, "max_chunks", "integer"),
            ("POST", "/lease", {"json": {"max_chunks": -1}}, "max_chunks", "greater than"),
            ("POST", "/lease", {"json": {}}, "max_chunks", "max_chunks is required"),
            (
                "POST",
                "/lease",
                {"content": b'{"max_chunks": ', "headers": {"Content-Type": "application/json"}},
                "body",
                "not valid JSON",
            ),
            ("POST", "/register", {"json": {"max_parallel": 2}}, "name", "name is required"),
            # Checked by the core, not the schema: the same body shape.
            ("POST", "/register", {"json": {"name": "n", "max_parallel": 0}}, "max_parallel", ""),
            (
                "POST",
                "/complete",
                {"json": {"completions": [{"chunk_id": 1, "lease_token": "t"}]}},
                "completions.0.result",
                "required",
            ),
            (
                "POST",
                "/release",
                {"json": {"chunk_ids": ["a"], "lease_token": "t"}},
                "chunk_ids.0",
                "",
            ),
            ("GET", "/claim-status?wait=-1", {}, "wait", "greater than"),
            ("GET", "/wait-for-work?timeout=soon", {}, "timeout", "number"),
        ]
        for method, path, kwargs, field, detail in cases:
            extra_headers = kwargs.pop("headers", {})
            response = http.request(method, API + path, headers=headers | extra_headers, **kwargs)
            assert response.status_code == 422, (path, response.text)
            body = response.json()
            assert set(body) == {"error", "detail", "field"}
            assert body["error"] == "InvalidRequest" and body["field"] == field, (path, body)
            assert detail in body["detail"], (path, body)


def test_unknown_routes_and_methods_answer_in_the_same_shape(portal: Portal) -> None:
    with httpx.Client(base_url=portal.url) as http:
        missing = http.get(f"{API}/no-such-thing")
        assert missing.status_code == 404
        assert missing.json() == {"error": "NotFound", "detail": "Not Found", "field": None}
        wrong = http.get(f"{API}/lease")
        assert wrong.status_code == 405 and wrong.json()["error"] == "HTTPError"
        health = http.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "ok"}


@pytest.mark.anyio
async def test_http_client_raises_the_portals_error_types(portal: Portal) -> None:
    transport = HttpTransport(portal.url)
    try:
        reg = await transport.register(NodeInfo(name="n1"))
        creds = NodeCredentials(reg.node_id, reg.token)
        with pytest.raises(InvalidRequest) as bad_lease:
            await transport.lease(creds, -1)
        assert bad_lease.value.field == "max_chunks"
        with pytest.raises(InvalidRequest) as bad_info:
            await transport.register(NodeInfo(name=" "))
        assert bad_info.value.field == "name" and "1 to 100 characters" in bad_info.value.message
        with pytest.raises(AuthenticationFailed):
            await transport.heartbeat(NodeCredentials(reg.node_id, "wrong"), Heartbeat())
    finally:
        await transport.aclose()


async def _timed_claim_poll(portal: Portal, claim: Any, *, claim_after: float) -> float:
    """Seconds between the claim and the long poll's answer."""
    transport = HttpTransport(portal.url)
    try:
        reg = await transport.register(NodeInfo(name="waiting"))
        creds = NodeCredentials(reg.node_id, reg.token)
        claimed_at = 0.0

        async def claim_later() -> None:
            nonlocal claimed_at
            await anyio.sleep(claim_after)
            await anyio.to_thread.run_sync(claim, reg.claim_code)
            claimed_at = time.monotonic()

        async with anyio.create_task_group() as tg:
            tg.start_soon(claim_later)
            status = await transport.claim_status(creds, wait=20)
            answered_at = time.monotonic()
        assert status.claimed and status.owner == "owner"
        return answered_at - claimed_at
    finally:
        await transport.aclose()


@pytest.mark.anyio
async def test_claim_long_poll_answers_at_once_when_the_portal_claims(portal: Portal) -> None:
    # The portal's own claims go through its hooks: the waiting poll is woken at once.
    lag = await _timed_claim_poll(portal, portal.harness.claim, claim_after=0.5)
    assert lag < 0.5


@pytest.mark.anyio
async def test_claim_long_poll_answers_within_a_second_of_a_claim_made_elsewhere(
    portal: Portal,
) -> None:
    # Another process claiming on the same database (no hooks here): found by the recheck.
    owner_id = portal.harness.user("owner").id or 0

    def claim_elsewhere(code: str) -> None:
        claim_and_announce(portal.coordinator.db, user_id=owner_id, code=code)

    lag = await _timed_claim_poll(portal, claim_elsewhere, claim_after=0.3)
    assert lag < 1.5


@pytest.mark.anyio
async def test_wait_for_work_answers_when_a_job_is_submitted(portal: Portal) -> None:
    transport = HttpTransport(portal.url)
    try:
        reg = await transport.register(NodeInfo(name="idle"))
        await anyio.to_thread.run_sync(portal.harness.claim, reg.claim_code)
        creds = NodeCredentials(reg.node_id, reg.token)
        submitted_at = 0.0

        async def submit_later() -> None:
            nonlocal submitted_at
            await anyio.sleep(0.5)
            await anyio.to_thread.run_sync(lambda: portal.harness.submit(10, chunks=1))
            submitted_at = time.monotonic()

        async with anyio.create_task_group() as tg:
            tg.start_soon(submit_later)
            await transport.wait_for_work(creds, 20)
            woken_at = time.monotonic()
        assert 0 < woken_at - submitted_at < 0.5
        assert len(await transport.lease(creds, 1)) == 1
    finally:
        await transport.aclose()


@pytest.mark.parametrize(
    "portal_settings",
    [PortalSettings(database_url="sqlite://", long_poll_max_seconds=0.5)],
    ids=["polls-of-0.5s"],
)
def test_long_polls_are_bounded_by_the_portal(portal: Portal) -> None:
    with httpx.Client(base_url=portal.url, timeout=10) as http:
        headers = node_headers(register(http))
        for path in ("/claim-status?wait=60", "/wait-for-work?timeout=60"):
            started = time.monotonic()
            response = http.get(API + path, headers=headers)
            assert response.status_code == 200, response.text
            assert 0.4 < time.monotonic() - started < 3.0, path
        assert response.json() == {"woken": False}


@pytest.mark.parametrize(
    "portal_settings",
    [PortalSettings(database_url="sqlite://", register_limit_per_minute=3)],
    ids=["3-registrations-a-minute"],
)
def test_registrations_are_rate_limited_per_address(portal: Portal) -> None:
    with httpx.Client(base_url=portal.url) as http:
        for i in range(3):
            register(http, name=f"n{i}")
        response = http.post(f"{API}/register", json={"name": "one too many"})
    assert response.status_code == 429
    body = response.json()
    assert body["error"] == "RateLimited"
    assert body["detail"].startswith("too many node registrations from this address")

    async def through_the_client() -> None:
        transport = HttpTransport(portal.url)
        try:
            with pytest.raises(RateLimited):
                await transport.register(NodeInfo(name="again"))
        finally:
            await transport.aclose()

    anyio.run(through_the_client)
