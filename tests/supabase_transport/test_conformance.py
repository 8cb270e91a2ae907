"""The supabase transport passes the transport conformance suite: supabase-py calls the
node functions through a PostgREST-like gateway, so the real SQL decides everything."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wowlab_core.coordinator import Coordinator
from wowlab_core.testing.conformance import TransportConformance, TransportHarness
from wowlab_transport_supabase.client import SupabaseTransport
from wowlab_transport_supabase.testing import jwt
from wowlab_transport_supabase.testing.harness import harness_for


class TestSupabaseTransport(TransportConformance):
    @pytest.fixture
    def transport_harness(
        self,
        sql_coordinator: Coordinator,
        make_transport: Callable[[], SupabaseTransport],
    ) -> TransportHarness:
        harness = harness_for(sql_coordinator, make_transport)
        harness.make_unreachable_transport = lambda: SupabaseTransport(
            "http://127.0.0.1:9", jwt.anon_key(), realtime=False, timeout=5.0
        )
        return harness
