"""A served portal on a real SQLite database, with the conformance harness's helpers
(claim a node, submit a toy job) acting on the server side."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.http_client import HttpTransport
from wowlab_core.plugins import Hooks
from wowlab_core.testing.conformance import TransportHarness
from wowlab_core.testing.plugin import TEST_SETTINGS
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
