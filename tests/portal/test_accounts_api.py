"""Accounts over the API: sign up, log in and out, CSRF, API tokens, rate limits."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session
from wowlab_core.models import ApiToken, User
from wowlab_portal.app import create_app

from .conftest import api_settings, make_account

API = "/api/v1"


def test_signup_login_logout_with_session_cookie_and_csrf(api: TestClient, db: Engine) -> None:
    r = api.post(f"{API}/auth/signup", json={"username": "alice", "password": "correct horse"})
    assert r.status_code == 201, r.text
    csrf = r.json()["csrf_token"]
    # The token is in the answer; no cookie a script could read carries it.
    assert "wowlab_csrf" not in api.cookies and "httponly" in r.headers["set-cookie"].lower()
    with read_session(db) as session:
        user = session.exec(select(User).where(User.username == "alice")).one()
        assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert api.get(f"{API}/me").json()["username"] == "alice"
    # Unsafe request by cookie without the CSRF header: refused, nothing made.
    r = api.post(f"{API}/tokens", json={"name": "cli"})
    assert r.status_code == 403 and r.json()["field"] == "X-CSRF-Token", r.text
    r = api.post(f"{API}/tokens", json={"name": "cli"}, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    r = api.post(
        f"{API}/tokens",
        json={"name": "cli"},
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert r.status_code == 403 and r.json()["field"] == "Origin"
    r = api.post(f"{API}/tokens", json={"name": "cli"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    assert api.post(f"{API}/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    r = api.get(f"{API}/me")
    assert r.status_code == 401 and r.json()["error"] == "AuthenticationFailed"

    r = api.post(f"{API}/auth/login", json={"username": "alice", "password": "wrong password"})
    assert r.status_code == 401 and r.json()["detail"] == "wrong username or password"
    r = api.post(f"{API}/auth/login", json={"username": "nobody", "password": "wrong password"})
    assert r.status_code == 401 and r.json()["detail"] == "wrong username or password"
    r = api.post(f"{API}/auth/login", json={"username": "ALICE", "password": "correct horse"})
    assert r.status_code == 200 and r.json()["user"]["username"] == "alice"
    assert r.json()["csrf_token"] != csrf  # a new session, a new token


def test_signup_errors_name_the_field(api: TestClient) -> None:
    cases = [
        ({"username": "a", "password": "long enough"}, "username"),
        ({"username": "bad name", "password": "long enough"}, "username"),
        ({"username": "bob", "password": "short"}, "password"),
        ({"username": "bob"}, "password"),
    ]
    for body, field in cases:
        r = api.post(f"{API}/auth/signup", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, (body, r.text)
    r = api.post(f"{API}/auth/signup", json={"username": "bob", "password": "12345678"})
    assert r.is_success
    r = api.post(f"{API}/auth/signup", json={"username": "BOB", "password": "12345678"})
    assert r.status_code == 422 and "taken" in r.json()["detail"]
    r = api.post(
        f"{API}/auth/signup",
        json={"username": "carol", "password": "12345678"},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403


def test_api_tokens_are_shown_once_stored_hashed_listed_and_revoked(
    api: TestClient, db: Engine
) -> None:
    alice = make_account(db, "alice")
    bob = make_account(db, "bob")
    r = api.post(f"{API}/tokens", json={"name": "laptop"}, headers=alice.headers)
    assert r.status_code == 201
    made = r.json()
    assert made["token"].startswith("wl_") and made["prefix"] == made["token"][:8]
    with read_session(db) as session:
        row = session.get(ApiToken, made["id"])
        assert row is not None and made["token"] not in row.token_hash
    new_headers = {"Authorization": f"Bearer {made['token']}"}
    assert api.get(f"{API}/me", headers=new_headers).json()["username"] == "alice"
    listed = api.get(f"{API}/tokens", headers=alice.headers).json()
    assert [t["name"] for t in listed] == ["tests", "laptop"] and "token" not in listed[1]
    assert listed[0]["last_used_at"] is not None  # alice.headers was used
    # Bob cannot revoke (or learn about) alice's token.
    assert api.delete(f"{API}/tokens/{made['id']}", headers=bob.headers).status_code == 404
    assert api.delete(f"{API}/tokens/{made['id']}", headers=alice.headers).status_code == 204
    r = api.get(f"{API}/me", headers=new_headers)
    assert r.status_code == 401 and "not valid" in r.json()["detail"]
    r = api.get(f"{API}/me", headers={"Authorization": "Bearer not-a-user-token"})
    assert r.status_code == 401 and "wl_" in r.json()["detail"]


def test_logins_are_limited_per_address(db: Engine, api_coordinator: Coordinator) -> None:
    make_account(db, "alice", password="correct horse")
    make_account(db, "bob", password="correct horse")
    settings = api_settings(login_limit_per_address_per_minute=5, login_free_failures=10)
    with TestClient(create_app(settings, coordinator=api_coordinator)) as client:
        for _ in range(3):
            r = client.post(f"{API}/auth/login", json={"username": "alice", "password": "nope"})
            assert r.status_code == 401
        right = {"username": "alice", "password": "correct horse"}
        assert client.post(f"{API}/auth/login", json=right).status_code == 200
        bob = {"username": "bob", "password": "correct horse"}
        assert client.post(f"{API}/auth/login", json=bob).status_code == 200  # the 5th
        r = client.post(f"{API}/auth/login", json=bob)
        assert r.status_code == 429 and "from your address" in r.json()["detail"]
        body = r.json()
        assert body["error"] == "RateLimited" and "try again in" in body["detail"]
