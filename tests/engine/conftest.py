"""Fixtures of the engine tests: the two engines and small configs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from wowlab_engine.engine import NumbaEngine, ReferenceEngine

BASE_CONFIG: dict[str, Any] = {
    "name": "test",
    "actor": {"primary_stat": 1000, "crit_pct": 0},
    "fight": {"max_time": 60, "vary_combat_length": 0.0},
    "spells": [{"name": "bolt", "damage": {"coefficient": 1.0}}],
    "rotation": [{"spell": "bolt"}],
}


def make_config(**changes: Any) -> dict[str, Any]:
    """A copy of BASE_CONFIG with top-level sections replaced or merged (dicts)."""
    config = copy.deepcopy(BASE_CONFIG)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


@pytest.fixture(scope="session")
def numba_engine() -> NumbaEngine:
    return NumbaEngine()


@pytest.fixture(scope="session")
def reference_engine() -> ReferenceEngine:
    return ReferenceEngine()
