"""The HTTP transport passes the transport conformance suite against a real portal
(uvicorn on a free port), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.http_client import HttpOptions, HttpTransport
from wowlab_core.plugins import Hooks
from wowlab_core.testing.conformance import TransportConformance, TransportHarness
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_portal.app import create_app

from .server import serve


class TestHttpTransport(TransportConformance):
    @pytest.fixture
    def transport_harness(self, db: Engine, wowlab_hooks: Hooks) -> Iterator[TransportHarness]:
        coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
        with serve(create_app(coordinator=coordinator)) as url:
            yield TransportHarness(
                coordinator,
                lambda: HttpTransport(url),
                # Nothing listens on port 9 (discard) here.
                make_unreachable_transport=lambda: HttpTransport(
                    "http://127.0.0.1:9", options=HttpOptions(retries=1, backoff_seconds=0.1)
                ),
            )
