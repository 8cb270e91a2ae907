"""Sessions end on the server, passwords can be changed and reset, API tokens expire,
and wrong passwords slow the guesser down without locking the owner out (issue 8).

The attack of the review: a copied session cookie kept working for 14 days after
logout. Here a second client holding a copy of the cookie is refused after each way
of ending the session."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session, write_session
from wowlab_core.models import ApiToken, LoginFailure, utcnow
from wowlab_core.plugins import Hooks
from wowlab_portal.app import create_app
from wowlab_portal.login_throttle import LoginThrottle

from .conftest import api_settings, make_account
from .server import serve

API = "/api/v1"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "a new staple battery"


@pytest.fixture
def app_client(db: Engine, api_coordinator: Coordinator) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        yield client


def login(client: TestClient, password: str = PASSWORD) -> str:
    """Log in as alice; the CSRF token."""
    r = client.post(f"{API}/auth/login", json={"username": "alice", "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["csrf_token"])


def another_browser(client: TestClient) -> httpx.Client:
    """A second client of the same app, with a cookie jar of its own."""
    return httpx.Client(transport=client._transport, base_url=str(client.base_url))


def stolen_copy(client: TestClient) -> httpx.Client:
    """Another client carrying a copy of ``client``'s session cookie (an attacker's)."""
    copy = another_browser(client)
    copy.cookies.set("wowlab_session", client.cookies["wowlab_session"])
    return copy


def test_a_copied_cookie_stops_working_after_logout(app_client: TestClient, db: Engine) -> None:
    make_account(db, "alice", password=PASSWORD)
    csrf = login(app_client)
    thief = stolen_copy(app_client)
    assert thief.get(f"{API}/me").status_code == 200  # the copy works while the session lives
    assert app_client.post(f"{API}/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    r = thief.get(f"{API}/me")
    assert r.status_code == 401, "the copied cookie outlived the logout"
    assert thief.get("/nodes", follow_redirects=False).headers["location"].startswith("/login")


def test_a_copied_cookie_stops_working_after_logout_from_the_page(
    app_client: TestClient, db: Engine
) -> None:
    make_account(db, "alice", password=PASSWORD)
    login(app_client)
    thief = stolen_copy(app_client)
    page = app_client.get("/nodes").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token and thief.get("/nodes").status_code == 200
    r = app_client.post("/logout", data={"csrf_token": token.group(1)}, follow_redirects=False)
    assert r.status_code == 303
    assert thief.get("/nodes", follow_redirects=False).status_code == 303  # to the log-in page


def test_changing_the_password_ends_every_other_session(app_client: TestClient, db: Engine) -> None:
    alice = make_account(db, "alice", password=PASSWORD)
    csrf = login(app_client)
    thief = stolen_copy(app_client)
    body = {"current_password": "not it at all", "new_password": NEW_PASSWORD}
    r = app_client.post(f"{API}/auth/password", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 401 and r.json()["field"] == "current_password"
    body = {"current_password": PASSWORD, "new_password": "short"}
    r = app_client.post(f"{API}/auth/password", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422 and r.json()["field"] == "new_password"
    assert thief.get(f"{API}/me").status_code == 200  # nothing changed yet

    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    r = app_client.post(f"{API}/auth/password", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    fresh_csrf = r.json()["csrf_token"]
    assert fresh_csrf and fresh_csrf != csrf
    assert thief.get(f"{API}/me").status_code == 401, "the copied cookie survived"
    assert app_client.get(f"{API}/me").status_code == 200  # the changer stays logged in
    # The old token is gone with the old session; the new one works.
    r = app_client.post(f"{API}/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    r = app_client.post(f"{API}/tokens", json={"name": "x"}, headers={"X-CSRF-Token": fresh_csrf})
    assert r.status_code == 201
    # API tokens are not sessions: they keep working.
    assert app_client.get(f"{API}/me", headers=alice.headers).status_code == 200
    app_client.cookies.clear()
    r = app_client.post(f"{API}/auth/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 401
    login(app_client, NEW_PASSWORD)


def test_the_change_password_page(app_client: TestClient, db: Engine) -> None:
    make_account(db, "alice", password=PASSWORD)
    login(app_client)
    thief = stolen_copy(app_client)
    page = app_client.get("/account")
    assert page.status_code == 200 and "Change the password" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    form = {
        "csrf_token": token.group(1),
        "current_password": PASSWORD,
        "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD + "!",
    }
    r = app_client.post("/account/password", data=form)
    assert r.status_code == 422 and "The two new passwords differ." in r.text
    form["confirm_password"] = NEW_PASSWORD
    for _ in range(3):  # wrong current passwords are throttled like log-ins
        r = app_client.post("/account/password", data={**form, "current_password": "wrong one!"})
        assert r.status_code == 400 and "The current password is wrong" in r.text
    r = app_client.post("/account/password", data=form)
    assert r.status_code == 429 and 'id="error-current_password">Too many wrong' in r.text
    time.sleep(1.1)
    assert thief.get("/account").status_code == 200
    r = app_client.post("/account/password", data=form, follow_redirects=True)
    assert r.status_code == 200 and "Password changed" in r.text
    assert thief.get("/account", follow_redirects=False).status_code == 303
    assert app_client.get("/account").status_code == 200


def test_log_out_everywhere_ends_all_sessions(app_client: TestClient, db: Engine) -> None:
    make_account(db, "alice", password=PASSWORD)
    laptop, phone = app_client, another_browser(app_client)
    r = phone.post(f"{API}/auth/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    login(laptop)
    thief = stolen_copy(laptop)
    page = laptop.get("/account").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token and "Log out everywhere" in page
    for client in (laptop, phone, thief):
        assert client.get(f"{API}/me").status_code == 200
    r = laptop.post("/account/logout-all", data={"csrf_token": token.group(1), "confirmed": "yes"})
    assert r.status_code == 200 and "logged out everywhere" in r.text
    for client in (laptop, phone, thief):
        assert client.get(f"{API}/me").status_code == 401
    # The API route does the same.
    csrf = login(laptop)
    r = laptop.post(f"{API}/auth/logout-all", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204 and laptop.get(f"{API}/me").status_code == 401


def test_admin_reset_password_prints_a_new_password_and_ends_sessions(
    sqlite_db: Engine, wowlab_hooks: Hooks
) -> None:
    make_account(sqlite_db, "alice", password=PASSWORD)
    url = sqlite_db.url.render_as_string(hide_password=False)
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks)
    with TestClient(create_app(api_settings(), coordinator=coordinator)) as client:
        login(client)
        thief = stolen_copy(client)

        def wowlab(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
            env_args = [sys.executable, "-m", "wowlab_core", *args, "--database-url", url]
            return subprocess.run(env_args, input=stdin, capture_output=True, text=True, timeout=60)

        done = wowlab("admin", "reset-password", "alice")
        assert done.returncode == 0, done.stderr
        new = re.search(r"new password for alice: (\S+)", done.stdout)
        assert new and len(new.group(1)) >= 16, done.stdout
        assert thief.get(f"{API}/me").status_code == 401
        assert client.get(f"{API}/me").status_code == 401
        r = client.post(f"{API}/auth/login", json={"username": "alice", "password": PASSWORD})
        assert r.status_code == 401
        login(client, new.group(1))

        twice = f"{NEW_PASSWORD}\n" * 2
        typed = wowlab("admin", "reset-password", "ALICE", "--prompt", stdin=twice)
        assert typed.returncode == 0, typed.stderr
        assert NEW_PASSWORD not in typed.stdout
        login(client, NEW_PASSWORD)

        short = wowlab("admin", "reset-password", "alice", "--prompt", stdin="short\nshort\n")
        # (Without a terminal, getpass warns on stderr first; the error is one line.)
        error = short.stderr.strip().splitlines()[-1]
        assert short.returncode == 2 and error.startswith("error: a password is 8 to"), error
        nobody = wowlab("admin", "reset-password", "nobody")
        assert nobody.returncode == 1  # it ran, and found no such user
        assert nobody.stderr.strip() == "error: no user named 'nobody'"


def test_api_tokens_can_expire(app_client: TestClient, db: Engine) -> None:
    alice = make_account(db, "alice")
    r = app_client.post(
        f"{API}/tokens", json={"name": "ci", "expires_in_days": 7}, headers=alice.headers
    )
    assert r.status_code == 201, r.text
    made = r.json()
    expires = made["expires_at"]
    assert expires is not None
    bearer = {"Authorization": f"Bearer {made['token']}"}
    assert app_client.get(f"{API}/me", headers=bearer).status_code == 200
    # A week later (the clock moved on): refused, saying why.
    with write_session(db) as session:
        row = session.get(ApiToken, made["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(row)
        session.commit()
    r = app_client.get(f"{API}/me", headers=bearer)
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    for days in (0, -1, 100_000):
        r = app_client.post(
            f"{API}/tokens", json={"name": "x", "expires_in_days": days}, headers=alice.headers
        )
        assert r.status_code == 422 and r.json()["field"] == "expires_in_days"
    r = app_client.post(f"{API}/tokens", json={"name": "forever"}, headers=alice.headers)
    assert r.status_code == 201 and r.json()["expires_at"] is None


# --- login throttling -------------------------------------------------------------------------


def test_the_delay_doubles_after_the_free_failures_up_to_the_cap() -> None:
    throttle = LoginThrottle(free=3, base_seconds=1.0, cap_seconds=60.0)
    assert [throttle.delay(n) for n in range(1, 11)] == [0, 0, 1, 2, 4, 8, 16, 32, 60, 60]


def test_a_strangers_wrong_passwords_do_not_lock_the_owner_out(
    sqlite_db: Engine, wowlab_hooks: Hooks
) -> None:
    """Ten wrong passwords from a stranger used to lock alice out for a minute, wherever
    she logged in from. Now they slow down the stranger's address only."""
    make_account(sqlite_db, "alice", password=PASSWORD)
    # Short delays, so the test can wait them out; a per-address limit out of the way.
    settings = api_settings(
        trusted_proxies=["127.0.0.1"],
        login_free_failures=3,
        login_backoff_seconds=0.01,
        login_limit_per_address_per_minute=1000,
    )
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks)
    with serve(create_app(settings, coordinator=coordinator)) as url:

        def attempt(address: str, password: str) -> httpx.Response:
            return httpx.post(
                f"{url}{API}/auth/login",
                json={"username": "alice", "password": password},
                headers={"X-Forwarded-For": address},
            )

        stranger, owner = "203.0.113.66", "198.51.100.7"
        refused = []
        for _ in range(10):
            r = attempt(stranger, "guess guess guess")
            while r.status_code == 429:  # wait as told, then guess again
                refused.append(r.json()["detail"])
                time.sleep(0.05)
                r = attempt(stranger, "guess guess guess")
            assert r.status_code == 401
        # The owner logs in at once from her own address (the review: locked out)...
        r = attempt(owner, PASSWORD)
        assert r.status_code == 200, r.text
        assert refused and all("wrong passwords for this account from your" in d for d in refused)
        with read_session(sqlite_db) as session:
            row = session.get(LoginFailure, ("alice", stranger))
            assert row is not None and row.failures == 10 and row.blocked_until is not None
            # After 10 failures the stranger waits 0.01 s * 2**7.
            wait = (row.blocked_until - row.last_failed_at).total_seconds()
            assert wait == pytest.approx(0.01 * 2**7, abs=0.001)
        # ...while the stranger is held back, even with the right password.
        r = attempt(stranger, PASSWORD)
        assert r.status_code == 429 and re.search(r"try again in \d+ s", r.json()["detail"])
        with read_session(sqlite_db) as session:
            assert session.get(LoginFailure, ("alice", owner)) is None
