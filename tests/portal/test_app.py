"""The portal app: plugins' routers, settings from the environment, what the lifespan builds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pydantic
import pytest
from fastapi import APIRouter, FastAPI, Request
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import create_all, create_db_engine
from wowlab_core.errors import InvalidRequest
from wowlab_core.hookspecs import hookimpl
from wowlab_core.plugins import Hooks
from wowlab_portal.app import create_app
from wowlab_portal.settings import PortalSettings

from .server import serve


class PingPlugin:
    """A plugin adding a route that uses what the portal keeps on ``app.state``."""

    def __init__(self) -> None:
        self.apps: list[FastAPI] = []

    @hookimpl
    def wowlab_portal_routers(self, app: FastAPI) -> None:
        self.apps.append(app)
        router = APIRouter(prefix="/api/v1/ping", tags=["ping"])

        @router.get("")
        async def ping(request: Request) -> dict[str, Any]:
            coordinator = request.app.state.coordinator
            return {"pong": True, "lease_seconds": coordinator.settings.lease_seconds}

        app.include_router(router)


def test_wowlab_portal_routers_lets_a_plugin_add_routes(
    wowlab_hooks: Hooks, register_plugin: Any, sqlite_db: Engine
) -> None:
    plugin = register_plugin(PingPlugin())
    app = create_app(PortalSettings(lease_seconds=42), hooks=wowlab_hooks, db=sqlite_db)
    with serve(app) as url, httpx.Client(base_url=url) as http:
        assert http.get("/api/v1/ping").json() == {"pong": True, "lease_seconds": 42}
        assert "/api/v1/ping" in http.get("/openapi.json").json()["paths"]
    assert plugin.apps == [app]  # called once, with the app


class Heartbeat:
    """A plugin whose service runs inside the portal: it ticks until the portal stops."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.ticks = 0
        self.started = False
        self.stopped = False
        self.saw_coordinator: object = None

    @hookimpl
    def wowlab_portal_services(self, app: FastAPI) -> list[Any]:
        async def tick(*, task_status: Any) -> None:
            if self.fail:
                raise RuntimeError("cannot reach the broker")
            self.saw_coordinator = app.state.coordinator
            self.started = True
            task_status.started()
            try:
                while True:
                    self.ticks += 1
                    await anyio.sleep(0.01)
            finally:
                self.stopped = True

        return [tick]


def test_wowlab_portal_services_run_while_the_portal_serves(
    wowlab_hooks: Hooks, register_plugin: Any, sqlite_db: Engine
) -> None:
    plugin = register_plugin(Heartbeat())
    app = create_app(PortalSettings(), hooks=wowlab_hooks, db=sqlite_db)
    with serve(app) as url:
        # Started before the portal answers its first request.
        assert plugin.started and plugin.saw_coordinator is app.state.coordinator
        assert httpx.get(f"{url}/healthz").status_code == 200
        ticks = plugin.ticks
        time.sleep(0.2)
        assert plugin.ticks > ticks and not plugin.stopped
    assert plugin.stopped  # cancelled when the portal stopped


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_wowlab_portal_services_failing_to_start_stops_the_portal(
    wowlab_hooks: Hooks, register_plugin: Any, sqlite_db: Engine
) -> None:
    register_plugin(Heartbeat(fail=True))
    app = create_app(PortalSettings(), hooks=wowlab_hooks, db=sqlite_db)
    with pytest.raises(RuntimeError, match="did not start"), serve(app):
        pass


def test_portal_imports_no_plugin_package_by_name() -> None:
    """The portal composes plugins through hooks only (the MQTT bridge comes through
    ``wowlab_portal_services``)."""
    import ast

    root = Path(__file__).resolve().parents[2] / "wowlab_portal"
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [
                f"{path.name}: {n}"
                for n in names
                if n.split(".")[0].startswith(("wowlab_transport", "wowlab_gui", "wowlab_engine"))
            ]
    assert found == []


def test_lifespan_builds_database_and_coordinator_from_settings(
    tmp_path: Path, wowlab_hooks: Hooks
) -> None:
    url = f"sqlite:///{tmp_path / 'portal.db'}"
    engine = create_db_engine(url)
    create_all(engine)
    engine.dispose()
    app = create_app(
        PortalSettings(database_url=url, lease_seconds=9, heartbeat_seconds=3),
        hooks=wowlab_hooks,
    )
    with serve(app) as base, httpx.Client(base_url=base) as http:
        coordinator = app.state.coordinator
        assert isinstance(coordinator, Coordinator) and coordinator.hooks is wowlab_hooks
        assert coordinator.settings.lease_seconds == 9
        assert str(app.state.db.url) == url
        assert http.get("/healthz").json()["database"] == "ok"
        reg = http.post("/api/v1/node/register", json={"name": "n"}).json()
        status = http.get(
            "/api/v1/node/claim-status",
            headers={
                "Authorization": f"Bearer {reg['token']}",
                "X-Wowlab-Node": str(reg["node_id"]),
            },
        ).json()
        assert status["heartbeat_seconds"] == 3
    # The claim listener the portal plugged into the hooks is gone with the portal.
    assert not [
        name for name, _ in wowlab_hooks.pm.list_name_plugin() if "portal-claims" in str(name)
    ]


def test_healthz_says_when_the_database_is_unreachable(wowlab_hooks: Hooks) -> None:
    db = create_db_engine("postgresql://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    with serve(create_app(hooks=wowlab_hooks, db=db)) as url:
        response = httpx.get(f"{url}/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable"}


def test_settings_come_from_the_wowlab_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WOWLAB_DATABASE_URL", "postgresql://pool@db/wowlab")
    monkeypatch.setenv("WOWLAB_LEASE_SECONDS", "120")
    monkeypatch.setenv("WOWLAB_CLAIM_LIFETIME_SECONDS", "60")
    monkeypatch.setenv("WOWLAB_PORT", "9100")
    settings = PortalSettings()
    assert settings.database_url == "postgresql://pool@db/wowlab" and settings.port == 9100
    coordinator = settings.coordinator_settings()
    assert coordinator.lease_seconds == 120 and coordinator.claim_lifetime.total_seconds() == 60
    assert coordinator.heartbeat_seconds == 15  # the coordinator's default
    monkeypatch.setenv("WOWLAB_LEASE_SECONDS", "-5")
    with pytest.raises(pydantic.ValidationError, match="lease_seconds"):
        PortalSettings()


def test_settings_from_a_config_file_under_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "portal.toml"
    config.write_text(
        'database_url = "postgresql://file@db/wowlab"\nmqtt_url = "mqtt://broker:1883"\n'
        'mqtt_password_file = "/etc/wowlab/mqtt-bridge.password"\n'
        "lease_seconds = 90\nport = 9200\n"
    )
    monkeypatch.setenv("WOWLAB_CONFIG_FILE", str(config))
    monkeypatch.delenv("WOWLAB_DATABASE_URL", raising=False)
    monkeypatch.setenv("WOWLAB_PORT", "9300")  # the environment wins over the file
    settings = PortalSettings()
    assert settings.database_url == "postgresql://file@db/wowlab"
    assert settings.mqtt_url == "mqtt://broker:1883" and settings.port == 9300
    assert settings.coordinator_settings().lease_seconds == 90
    config.write_text("lease_seconds = -1\n")
    with pytest.raises(pydantic.ValidationError, match="lease_seconds"):
        PortalSettings()
    monkeypatch.setenv("WOWLAB_CONFIG_FILE", str(tmp_path / "missing.toml"))
    with pytest.raises(InvalidRequest, match="is not a file"):
        PortalSettings()
