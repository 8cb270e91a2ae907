"""The HTTP node client on its own: error types, retries, unreachable portals.

A fake portal (``httpx.MockTransport``) answers as the test says; the real portal is
exercised by the conformance suite and the API tests.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from wowlab_core import errors
from wowlab_core.http_client import HttpOptions, HttpTransport, error_from_response
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Completion, Heartbeat, NodeCredentials, NodeInfo

CREDS = NodeCredentials(node_id=7, token="secret")
FAST = HttpOptions(retries=3, backoff_seconds=0.01, max_backoff_seconds=0.02, timeout=2)


def fake_portal(handler: Callable[[httpx.Request], httpx.Response]) -> HttpTransport:
    client = httpx.AsyncClient(
        base_url="http://portal.test", transport=httpx.MockTransport(handler)
    )
    return HttpTransport("http://portal.test", options=FAST, client=client)


def answer(status: int, body: Any = None) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("GET", "http://portal.test/x"))


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            401,
            {"error": "AuthenticationFailed", "detail": "bad token"},
            errors.AuthenticationFailed,
        ),
        (422, {"error": "ConfigInvalid", "detail": "x", "field": "spells"}, errors.ConfigInvalid),
        (422, {"error": "InvalidRequest", "detail": "x", "field": "name"}, errors.InvalidRequest),
        (422, {"error": "ResultInvalid", "detail": "x"}, errors.ResultInvalid),
        (422, {"error": "SomethingNew", "detail": "x"}, errors.InvalidRequest),
        (409, {"error": "LeaseLost", "detail": "x"}, errors.LeaseLost),
        (404, {"error": "NotFound", "detail": "x"}, errors.NotFound),
        (410, {"error": "ClaimCodeExpired", "detail": "x"}, errors.ClaimCodeExpired),
        (429, {"error": "RateLimited", "detail": "x"}, errors.RateLimited),
        (403, {"error": "Unheard", "detail": "x"}, errors.PermissionDenied),
        (418, {"error": "Unheard", "detail": "x"}, errors.WowlabError),
        (500, {"error": "InternalError", "detail": "x"}, errors.TransportError),
        (503, {"error": "TransportError", "detail": "x"}, errors.TransportError),
        (404, {"detail": "Not Found"}, errors.NotFound),  # not a wowlab portal
        (502, None, errors.TransportError),  # a proxy's page
    ],
)
def test_error_bodies_become_wowlab_error_types(
    status: int, body: Any, expected: type[errors.WowlabError]
) -> None:
    error = error_from_response(answer(status, body))
    assert type(error) is expected
    if body and "error" in body and status < 500:
        assert error.message == body["detail"] and error.field == body.get("field")
    if body is None or "error" not in body:
        assert "is this a wowlab portal?" in error.message


@pytest.mark.anyio
async def test_calls_send_the_node_credentials_and_the_protocol_bodies() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"outcomes": [{"chunk_id": 1, "outcome": "accepted"}]})

    transport = fake_portal(handler)
    completion = Completion(chunk_id=1, lease_token="t", result={"count": 2**70})
    [outcome] = await transport.complete(CREDS, [completion])
    assert outcome.outcome == "accepted"
    [request] = seen
    assert request.url.path == "/api/v1/node/complete"
    assert request.headers["Authorization"] == "Bearer secret"
    assert request.headers["X-Wowlab-Node"] == "7"
    assert request.headers["User-Agent"].startswith("wowlab-node/")
    assert httpx.Response(200, content=request.content).json() == {
        "completions": [completion.to_dict()]
    }


@pytest.mark.anyio
async def test_repeatable_calls_retry_server_errors_and_lost_answers() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ReadError("connection reset", request=request)
        if len(calls) == 2:
            return httpx.Response(503, json={"error": "TransportError", "detail": "db down"})
        return httpx.Response(200, json={"status": "online"})

    reply = await fake_portal(handler).heartbeat(CREDS, Heartbeat())
    assert reply.status == "online" and len(calls) == 3


@pytest.mark.anyio
@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.register(NodeInfo(name="n")),
        lambda t: t.lease(CREDS, 2),
        lambda t: t.fail(CREDS, 1, "t", "boom"),
    ],
    ids=["register", "lease", "fail"],
)
async def test_calls_that_must_not_run_twice_are_not_repeated(call: Any) -> None:
    calls: list[int] = []

    def lost(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadError("connection reset", request=request)

    with pytest.raises(errors.TransportError, match="cannot reach the portal"):
        await call(fake_portal(lost))
    assert len(calls) == 1

    calls.clear()

    def failing(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(500, json={"error": "InternalError", "detail": "bug"})

    with pytest.raises(errors.TransportError, match="bug"):
        await call(fake_portal(failing))
    assert len(calls) == 1

    # A request that never left is safe to send again, whatever it is.
    calls.clear()

    def refused_once(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(
            200,
            json={"node_id": 1, "token": "t", "claim_code": "ABCDEF", "claim_expires_at": None}
            | {"leases": []},
        )

    await call(fake_portal(refused_once))
    assert len(calls) == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.anyio
async def test_an_unreachable_portal_is_a_transport_error_after_the_retries() -> None:
    transport = HttpTransport(f"http://127.0.0.1:{free_port()}", options=FAST)
    try:
        with pytest.raises(errors.TransportError, match="cannot reach the portal at http://"):
            await transport.heartbeat(CREDS, Heartbeat())
        # Waiting for work is only a hint: it sleeps out its timeout instead of failing.
        started = time.monotonic()
        await transport.wait_for_work(CREDS, 0.5)
        assert 0.4 < time.monotonic() - started < 3
    finally:
        await transport.aclose()


def test_http_transport_is_registered(wowlab_hooks: Hooks) -> None:
    factory = wowlab_hooks.transport("http")
    transport = factory("http://portal.example:8000/", retries=1)
    assert isinstance(transport, HttpTransport)
    assert transport.url == "http://portal.example:8000" and transport.options.retries == 1
    anyio.run(transport.aclose)
    for bad in ("", "portal.example:8000", "ftp://portal.example"):
        with pytest.raises(errors.InvalidRequest, match="portal's URL"):
            factory(bad)
    with pytest.raises(errors.InvalidRequest, match="unexpected keyword"):
        factory("http://portal.example", colour="blue")
