"""Shared test setup. The wowlab pytest plugin (``wowlab_core.testing.plugin``) is loaded
through its ``pytest11`` entry point; its fixtures are all named ``wowlab_*``. This file
adds the short names wowlab's own tests use, forwarding to them, and repository-wide
settings."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator

# Property tests search the same examples in every CI run (fixed seed, no example
# database): a failure is reproducible, and no run fails on a search another run skipped.
# Locally they keep searching at random (`HYPOTHESIS_PROFILE=ci` for CI's behaviour).
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI") or os.environ.get("HYPOTHESIS_PROFILE") == "ci":
    hypothesis_settings.load_profile("ci")

# Tests never touch the user's real data or cache directories.
os.environ.setdefault(
    "WOWLAB_DATA_DIR", os.path.join(os.path.dirname(__file__), "artifacts", "data")
)
os.environ.setdefault(
    "WOWLAB_CACHE_DIR", os.path.join(os.path.dirname(__file__), "artifacts", "cache")
)


@pytest.fixture
def anyio_backend() -> str:
    """anyio tests run on asyncio."""
    return "asyncio"


@pytest.fixture
def db(wowlab_db: Engine) -> Engine:
    """``wowlab_db``: the same test on SQLite and on PostgreSQL."""
    return wowlab_db


@pytest.fixture
def sqlite_db(wowlab_sqlite_db: Engine) -> Engine:
    """``wowlab_sqlite_db``."""
    return wowlab_sqlite_db


@pytest.fixture
def postgres_db(wowlab_postgres_db: Engine) -> Engine:
    """``wowlab_postgres_db``."""
    return wowlab_postgres_db


@pytest.fixture
def coordinator(wowlab_coordinator: Coordinator) -> Coordinator:
    """``wowlab_coordinator``."""
    return wowlab_coordinator


@pytest.fixture
def register_plugin(
    wowlab_register_plugin: Callable[[object], object],
) -> Callable[[object], object]:
    """``wowlab_register_plugin``."""
    return wowlab_register_plugin


#: Tests that take a minute or more (README tour in a fresh venv, 200 MQTT nodes, killed portals):
#: run first, so the workers finish together instead of one of them running these at the end.
LONG_TESTS = (
    "tests/test_readme_tour.py",
    "tests/mqtt/test_scale.py",
    "tests/mqtt/test_scale_out.py",
    "tests/core/test_cli_failures.py",
    "tests/portal/test_cli_portal.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long tests first, longest first (a stable sort: every xdist worker gets the same order)."""

    def rank(item: pytest.Item) -> int:
        for i, prefix in enumerate(LONG_TESTS):
            if item.nodeid.startswith(prefix):
                return i
        return len(LONG_TESTS)

    items.sort(key=rank)
