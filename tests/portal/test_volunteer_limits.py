"""The portal protects volunteers at submit: no pure-Python reference engine for the pool,
no config whose one iteration is too long for a node to stop quickly."""

from __future__ import annotations

import importlib
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.plugins import Hooks

from .conftest import make_account

API = "/api/v1"


def test_the_reference_engine_is_refused_for_the_pool(
    api: TestClient, db: Engine, wowlab_hooks: Hooks, register_plugin: Any
) -> None:
    register_plugin(importlib.import_module("wowlab_engine.plugin"))
    alice = make_account(db, "alice").headers
    r = api.post(
        f"{API}/jobs",
        json={"example": "fire_mage", "engine": "reference", "iterations": 100},
        headers=alice,
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "engine"
    assert "runs only on your own machine" in r.json()["detail"]
    assert api.get(f"{API}/jobs", headers=alice).json() == []
    ok = api.post(f"{API}/jobs", json={"example": "fire_mage", "iterations": 100}, headers=alice)
    assert ok.status_code == 201, ok.text
    assert ok.json()["engine"] == "numba"


def test_a_config_too_expensive_per_iteration_is_refused_naming_its_cost(
    api: TestClient, db: Engine
) -> None:
    alice = make_account(db, "alice").headers
    r = api.post(
        f"{API}/jobs",
        json={"config": {"iteration_ms": 5000}, "engine": "toy", "iterations": 10},
        headers=alice,
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "ConfigTooExpensive" and body["field"] == "config"
    assert "one iteration takes more than 0.5 s" in body["detail"]
    assert api.get(f"{API}/jobs", headers=alice).json() == []
