"""Attacks on the portal's memory and parser through request bodies (issue 8): a huge
anonymous POST, a chunked one without Content-Length, deeply nested JSON. Each is
refused before the body is read or parsed."""

from __future__ import annotations

import json
import re
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_portal.app import create_app

from .conftest import api_settings, make_account
from .served import ServedPortal, start_portal

MiB = 1024 * 1024
ATTACK = 64 * MiB


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedPortal]:
    portal = start_portal(f"sqlite:///{tmp_path / 'portal.db'}")
    try:
        yield portal
    finally:
        assert portal.process.terminate() == 0, portal.process.output


def blast(port: int, path: str, *, total: int, chunked: bool) -> tuple[int | None, int]:
    """POST ``total`` bytes to ``path`` as fast as the server takes them, like an attacker
    who does not wait for an answer. Returns (the status answered, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {total}\r\n\r\n"
    sent = 0
    answer = b""
    try:
        sock.sendall(head.encode())
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                answer = sock.recv(65536)
                break
            if not writable:
                break  # the server stopped reading: its buffers are full, it took no more
            piece = b" " * min(256 * 1024, total - sent)  # JSON whitespace
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            sent += len(piece)
        if chunked and not answer:
            sock.sendall(b"0\r\n\r\n")
        if not answer:
            sock.settimeout(10)
            answer = sock.recv(65536)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    status = re.match(rb"HTTP/1\.1 (\d{3})", answer)
    return (int(status.group(1)) if status else None), sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_64_mib_anonymous_registration_is_refused_without_being_buffered(
    served: ServedPortal, chunked: bool
) -> None:
    # Warm up (the first requests allocate what the portal keeps), then attack.
    for _ in range(3):
        blast(served.port, "/api/v1/node/register", total=2048, chunked=chunked)
    peak_before = served.memory_kib("VmHWM")
    status, sent = blast(served.port, "/api/v1/node/register", total=ATTACK, chunked=chunked)
    grown = served.memory_kib("VmHWM") - peak_before
    assert status == 413, (status, sent, served.process.output[-2000:])
    # Before the limit the portal read and parsed it all: +200 MiB.
    assert grown < 16 * 1024, f"the portal's peak memory grew {grown} KiB (sent {sent} bytes)"
    print(f"{'chunked' if chunked else 'content-length'}: sent {sent / MiB:.1f} MiB, "
          f"peak RSS +{grown} KiB")  # fmt: skip


@pytest.fixture
def client(db: Engine, api_coordinator: Coordinator) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        yield client


def test_job_submissions_may_carry_4_mib_other_routes_1_mib(client: TestClient, db: Engine) -> None:
    alice = make_account(db, "alice")
    padding = " " * (2 * MiB)  # valid JSON whitespace
    # 2 MiB: over the general limit, under the submission limit (the config is then
    # refused for what it is, not for its size).
    r = client.post(
        "/api/v1/jobs",
        content=f'{{"config": {{"name": "x"}}, "iterations": 10}}{padding}',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["field"] != "body", r.text
    r = client.post(
        "/api/v1/tokens",
        content=f'{{"name": "x"}}{padding}',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["error"] == "RequestTooLarge", r.text
    r = client.post(
        "/api/v1/jobs",
        content=" " * (5 * MiB),
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and "4194304 bytes" in r.json()["detail"]


def _json_routes(client: TestClient) -> list[tuple[str, str]]:
    schema = client.get("/openapi.json").json()
    return [
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


def test_deeply_nested_json_gets_4xx_on_every_json_route(client: TestClient, db: Engine) -> None:
    alice = make_account(db, "alice")
    deep = "[" * 100_000 + "]" * 100_000
    inside = json.dumps({"config": {"name": "x"}, "name": "x", "username": "x"})[:-1]
    bodies = [deep, f'{inside}, "nested": {deep}}}']
    routes = _json_routes(client)
    assert ("POST", "/api/v1/jobs") in routes and ("POST", "/api/v1/node/register") in routes
    for method, template in routes:
        path = re.sub(r"\{[^}]+\}", "1", template)
        for body in bodies:
            r = client.request(
                method,
                path,
                content=body,
                headers={**alice.headers, "Content-Type": "application/json"},
            )
            assert r.status_code == 422 and r.json()["field"] == "body", (method, path, r.text)
    # Nesting a real config needs is fine.
    r = client.post("/api/v1/node/register", json={"name": "n", "labels": [[[[["x"]]]]]})
    assert r.status_code in (201, 422) and "nested" not in r.text


def test_a_deeply_nested_config_in_the_new_job_form_is_a_form_error(
    client: TestClient, db: Engine
) -> None:
    make_account(db, "alice", password="correct horse")
    r = client.post("/api/v1/auth/login", json={"username": "alice", "password": "correct horse"})
    assert r.status_code == 200
    page = client.get("/jobs/new").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    deep = "[" * 100_000 + "]" * 100_000  # was a 500 (RecursionError in json.loads)
    r = client.post(
        "/jobs/new", data={"csrf_token": token.group(1), "config": deep, "iterations": "10"}
    )
    assert r.status_code == 422 and "nested more than 64 levels" in r.text
