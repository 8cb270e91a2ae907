"""The ``wowlab`` pytest plugin: fixtures for wowlab's own tests and for plugin authors.

It is loaded wherever wowlab is installed (entry point ``pytest11``), so every fixture is
named ``wowlab_*`` and none shadows a project's own fixtures:

    ``wowlab_hooks``: a fresh plugin registry (built-ins + the toy engine, no entry points).
    ``wowlab_register_plugin``: register a throwaway plugin object for one test.
    ``wowlab_sqlite_db`` / ``wowlab_postgres_db``: real databases with wowlab's schema.
    ``wowlab_db``: parametrized over both (SQLite always, PostgreSQL when reachable).
    ``wowlab_coordinator``: a :class:`Coordinator` on ``wowlab_db`` with short test timings.

Test databases on PostgreSQL are named ``<prefix>_<random>``: the ini option
``wowlab_db_prefix`` (or ``WOWLAB_TEST_DB_PREFIX``) sets the prefix, ``wowlab_test`` by
default. A project that prefers short names aliases them in its ``conftest.py``::

    @pytest.fixture
    def db(wowlab_db):
        return wowlab_db
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator, CoordinatorSettings
from wowlab_core.plugins import Hooks, build_registry
from wowlab_core.testing.databases import (
    DEFAULT_DB_PREFIX,
    fresh_postgres_database,
    fresh_sqlite_database,
)
from wowlab_core.testing.toy_engine import toy_engine_plugin

#: Timings that make expiry and presence observable within a test.
TEST_SETTINGS = CoordinatorSettings(
    lease_seconds=1.0, heartbeat_seconds=0.2, offline_after_seconds=2.0, reap_interval_seconds=0.0
)


def _prefix(config: pytest.Config) -> str | None:
    # The ini option wins when a project sets it; else the environment or the default.
    value = str(config.getini("wowlab_db_prefix") or "")
    return value or None


@pytest.fixture
def wowlab_hooks() -> Hooks:
    """A fresh registry with the built-in plugins and the toy engine."""
    registry = build_registry(load_entry_points=False)
    registry.pm.register(toy_engine_plugin, name="toy-engine")
    return Hooks(registry.pm)


@pytest.fixture
def wowlab_register_plugin(wowlab_hooks: Hooks) -> Iterator[Callable[[object], object]]:
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
def wowlab_sqlite_db(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file database with wowlab's schema."""
    with fresh_sqlite_database(str(tmp_path)) as engine:
        yield engine


@pytest.fixture
def wowlab_postgres_db(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A fresh database on the real PostgreSQL server, dropped afterwards."""
    with fresh_postgres_database(prefix=_prefix(request.config)) as engine:
        yield engine


@pytest.fixture(params=["sqlite", "postgres"])
def wowlab_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        with fresh_sqlite_database(str(tmp_path)) as engine:
            yield engine
    else:
        with fresh_postgres_database(prefix=_prefix(request.config)) as engine:
            yield engine


@pytest.fixture
def wowlab_coordinator(wowlab_db: Engine, wowlab_hooks: Hooks) -> Coordinator:
    """A coordinator on ``wowlab_db`` with short test timings."""
    return Coordinator(wowlab_db, hooks=wowlab_hooks, settings=TEST_SETTINGS)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ini option ``wowlab_db_prefix``."""
    parser.addini(
        "wowlab_db_prefix",
        f"name prefix of wowlab's PostgreSQL test databases (default {DEFAULT_DB_PREFIX})",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the markers wowlab's fixtures use."""
    config.addinivalue_line("markers", "postgres: needs a real PostgreSQL server")


__all__ = ["TEST_SETTINGS"]
