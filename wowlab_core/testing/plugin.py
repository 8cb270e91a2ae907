"""The ``wowlab`` pytest plugin: fixtures for wowlab's own tests and for plugin authors.

Fixtures:
    ``wowlab_hooks``: a fresh plugin registry (built-ins + the toy engine, no entry points).
    ``register_plugin``: register a throwaway plugin object for one test.
    ``sqlite_db`` / ``postgres_db``: real databases with wowlab's schema.
    ``db``: parametrized over both (SQLite always, PostgreSQL when reachable).
    ``coordinator``: a :class:`Coordinator` on ``db`` with short test timings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator, CoordinatorSettings
from wowlab_core.plugins import Hooks, build_registry
from wowlab_core.testing.databases import fresh_postgres_database, fresh_sqlite_database
from wowlab_core.testing.toy_engine import toy_engine_plugin

#: Timings that make expiry and presence observable within a test.
TEST_SETTINGS = CoordinatorSettings(
    lease_seconds=1.0, heartbeat_seconds=0.2, offline_after_seconds=2.0, reap_interval_seconds=0.0
)


@pytest.fixture
def anyio_backend() -> str:
    """anyio tests run on asyncio."""
    return "asyncio"


@pytest.fixture
def wowlab_hooks() -> Hooks:
    """A fresh registry with the built-in plugins and the toy engine."""
    registry = build_registry(load_entry_points=False)
    registry.pm.register(toy_engine_plugin, name="toy-engine")
    return Hooks(registry.pm)


@pytest.fixture
def register_plugin(wowlab_hooks: Hooks) -> Iterator[Callable[[object], object]]:
    """Register throwaway plugins on ``wowlab_hooks``; they are unregistered afterwards."""
    added: list[object] = []

    def register(plugin: object) -> object:
        wowlab_hooks.pm.register(plugin)
        added.append(plugin)
        return plugin

    yield register
    for plugin in added:
        if wowlab_hooks.pm.is_registered(plugin):
            wowlab_hooks.pm.unregister(plugin)


@pytest.fixture
def sqlite_db(tmp_path: Any) -> Iterator[Engine]:
    """A SQLite file database with wowlab's schema."""
    with fresh_sqlite_database(str(tmp_path)) as engine:
        yield engine


@pytest.fixture
def postgres_db() -> Iterator[Engine]:
    """A fresh database on the real PostgreSQL server, dropped afterwards."""
    with fresh_postgres_database() as engine:
        yield engine


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Engine]:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        with fresh_sqlite_database(str(tmp_path)) as engine:
            yield engine
    else:
        with fresh_postgres_database() as engine:
            yield engine


@pytest.fixture
def coordinator(db: Engine, wowlab_hooks: Hooks) -> Coordinator:
    """A coordinator on ``db`` with short test timings."""
    return Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the markers wowlab's fixtures use."""
    config.addinivalue_line("markers", "postgres: needs a real PostgreSQL server")
