"""A served portal on a real SQLite database, with the conformance harness's helpers
(claim a node, submit a toy job) acting on the server side."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import write_session
from wowlab_core.http_client import HttpTransport
from wowlab_core.models import User
from wowlab_core.plugins import Hooks
from wowlab_core.testing.conformance import TransportHarness
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_portal.accounts import create_api_token, create_user, password_hasher
from wowlab_portal.app import create_app
from wowlab_portal.settings import PortalSettings

from .server import serve


@dataclass
class Portal:
    """A running portal: its URL, and the server side to act on."""

    url: str
    harness: TransportHarness

    @property
    def coordinator(self) -> Coordinator:
        return self.harness.coordinator


@pytest.fixture
def portal_settings() -> PortalSettings:
    """Settings of the ``portal`` fixture (tests override fields with ``model_copy``)."""
    return PortalSettings(database_url="sqlite://", claim_recheck_seconds=1.0)


@pytest.fixture
def portal(
    sqlite_db: Engine, wowlab_hooks: Hooks, portal_settings: PortalSettings
) -> Iterator[Portal]:
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    with serve(create_app(portal_settings, coordinator=coordinator)) as url:
        yield Portal(url, TransportHarness(coordinator, lambda: HttpTransport(url)))


@pytest.fixture(autouse=True)
def _private_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep what the portal writes to its data directory (the session key) out of $HOME."""
    monkeypatch.setenv("WOWLAB_DATA_DIR", str(tmp_path_factory.mktemp("data")))


# --- the user-facing API, in process (TestClient), on SQLite and PostgreSQL ------------------


def api_settings(**changes: Any) -> PortalSettings:
    """Settings for API tests: a fixed session key, cheap password hashes."""
    base = PortalSettings(
        database_url="sqlite://",
        secret_key="test-secret-key-not-for-production",
        password_time_cost=1,
        password_memory_kib=1024,
    )
    return base.model_copy(update=changes)


@dataclass
class Account:
    """A user made through the app's own functions, with an API token."""

    user: User
    token: str
    token_id: int

    @property
    def id(self) -> int:
        assert self.user.id is not None
        return self.user.id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_account(db: Engine, username: str, password: str | None = None) -> Account:
    """Create a user (with a password if given) and an API token for them."""
    with write_session(db) as session:
        user = create_user(
            session,
            username=username,
            password=password,
            passwords=password_hasher(time_cost=1, memory_kib=1024),
        )
        new = create_api_token(session, user=user, name="tests")
        session.commit()
        return Account(user=user, token=new.token, token_id=new.row.id or 0)


@pytest.fixture
def api_coordinator(db: Engine, wowlab_hooks: Hooks) -> Coordinator:
    return Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)


@pytest.fixture
def api(api_coordinator: Coordinator) -> Iterator[TestClient]:
    """The portal app on ``db`` (SQLite and PostgreSQL), driven in process."""
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        yield client
