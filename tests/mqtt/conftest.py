"""Fixtures of the MQTT tests: a real Mosquitto per test, and a bridge on the test's coordinator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .mosquitto import Broker, running_broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto on a free port (persistence in ``tmp_path``), stopped afterwards."""
    with running_broker(tmp_path / "broker") as b:
        yield b
