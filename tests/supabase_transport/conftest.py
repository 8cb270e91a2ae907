"""Fixtures of the Supabase tests: a Supabase-like database on the real PostgreSQL, the
RPC gateway in front of it, and transports that talk to the gateway with supabase-py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.plugins import Hooks
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_transport_supabase.client import SupabaseTransport
from wowlab_transport_supabase.testing import jwt
from wowlab_transport_supabase.testing.gateway import RpcGateway
from wowlab_transport_supabase.testing.harness import SqlCoordinator, supabase_database


@pytest.fixture
def supabase_db() -> Iterator[Engine]:
    """A fresh database like a Supabase project's, with wowlab's SQL applied."""
    with supabase_database() as engine:
        yield engine


@pytest.fixture
def gateway(supabase_db: Engine) -> Iterator[RpcGateway]:
    """The PostgREST-like RPC gateway on ``supabase_db``."""
    url = supabase_db.url.render_as_string(hide_password=False)
    gw = RpcGateway(url).start()
    yield gw
    gw.close()


@pytest.fixture
def sql_coordinator(supabase_db: Engine, wowlab_hooks: Hooks) -> Coordinator:
    """The portal side on the same database (submits, claims), test timings in the SQL."""
    return SqlCoordinator(supabase_db, hooks=wowlab_hooks, settings=TEST_SETTINGS)


@pytest.fixture
def make_transport(gateway: RpcGateway) -> Callable[[], SupabaseTransport]:
    """Node transports through the gateway (Realtime off: there is no Realtime server)."""
    return lambda: SupabaseTransport(gateway.url, jwt.anon_key(), realtime=False, timeout=30.0)
