"""The local transport passes the transport conformance suite, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import create_db_engine
from wowlab_core.plugins import Hooks
from wowlab_core.testing.conformance import TransportConformance, TransportHarness
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_core.transport_local import LocalTransport


class TestLocalTransport(TransportConformance):
    @pytest.fixture
    def transport_harness(self, db: Engine, wowlab_hooks: Hooks) -> TransportHarness:
        coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
        # A coordinator on a database server that is not there.
        nowhere = create_db_engine("postgresql://nobody@127.0.0.1:9/none", pool_pre_ping=False)
        unreachable = Coordinator(nowhere, hooks=wowlab_hooks, settings=TEST_SETTINGS)
        return TransportHarness(
            coordinator,
            lambda: LocalTransport(coordinator),
            make_unreachable_transport=lambda: LocalTransport(unreachable),
        )
