"""The portal's application factory.

``create_app()`` builds the FastAPI app; its lifespan builds what the routes share and
keeps it on ``app.state``: ``settings``, ``hooks`` (the plugins), ``db`` (the database
engine), ``coordinator`` (the node-facing operations) and the long-poll wake-ups. Tests
and embedders pass their own ``hooks``, ``db`` or ``coordinator`` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.from_thread import BlockingPortal
from fastapi import FastAPI
from sqlalchemy.engine import Engine as DbEngine
from starlette.middleware.sessions import SessionMiddleware

from wowlab_core import __version__
from wowlab_core.claim_codes import RateLimiter
from wowlab_core.coordinator import Coordinator
from wowlab_core.db import create_db_engine
from wowlab_core.plugins import Hooks, get_hooks
from wowlab_portal.accounts import password_hasher
from wowlab_portal.api.errors import install_error_handlers
from wowlab_portal.api.routes import accounts, health, jobs, metrics, node, nodes, social
from wowlab_portal.long_poll import ClaimSignal, RecentNodes, WorkBroadcast
from wowlab_portal.metrics import Histogram
from wowlab_portal.secret_key import resolve_secret_key
from wowlab_portal.settings import PortalSettings
from wowlab_portal.web import install_pages


def make_limiters(settings: PortalSettings) -> dict[str, RateLimiter]:
    """The rate limiters of user actions, by name (windows of one minute)."""
    per_minute = {
        "login_user": settings.login_limit_per_minute,
        "login_address": settings.login_limit_per_address_per_minute,
        "signup_address": settings.login_limit_per_address_per_minute,
        "claim_user": settings.claim_limit_per_minute,
        "claim_address": settings.claim_limit_per_address_per_minute,
    }
    return {name: RateLimiter(limit=n, window_seconds=60) for name, n in per_minute.items()}


def create_app(
    settings: PortalSettings | None = None,
    *,
    hooks: Hooks | None = None,
    db: DbEngine | None = None,
    coordinator: Coordinator | None = None,
) -> FastAPI:
    """The portal app. By default its lifespan loads the plugins, opens the database of
    ``settings.database_url`` and makes one coordinator; pass any of them to share yours
    (a given ``coordinator`` also brings its hooks and database)."""
    settings = settings or PortalSettings()
    routers_added = False

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal routers_added
        app_hooks = hooks or (coordinator.hooks if coordinator is not None else get_hooks())
        owns_db = db is None and coordinator is None
        if db is not None:
            app_db = db
        elif coordinator is not None:
            app_db = coordinator.db
        else:
            app_db = create_db_engine(settings.database_url)
        app_coordinator = coordinator or Coordinator(
            app_db, hooks=app_hooks, settings=settings.coordinator_settings()
        )
        work = WorkBroadcast(app_coordinator.work)
        app.state.settings = settings
        app.state.hooks = app_hooks
        app.state.db = app_db
        app.state.coordinator = app_coordinator
        app.state.work = work
        app.state.recent_nodes = RecentNodes()
        app.state.register_limiter = RateLimiter(
            limit=settings.register_limit_per_minute, window_seconds=60
        )
        app.state.limiters = make_limiters(settings)
        app.state.lease_latency = Histogram()
        app.state.passwords = password_hasher(
            time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib
        )
        try:
            if not routers_added:
                routers_added = True
                app_hooks.portal_routers(app=app)
            async with BlockingPortal() as portal, anyio.create_task_group() as tg:
                claims = ClaimSignal(portal)
                app.state.claims = claims
                claims_name = f"wowlab-portal-claims-{id(claims)}"
                app_hooks.pm.register(claims, name=claims_name)
                try:
                    tg.start_soon(work.run)
                    if settings.mqtt_url:
                        # Nodes on the mqtt transport reach this portal through its bridge.
                        from wowlab_transport_mqtt.bridge import MqttBridge

                        await tg.start(MqttBridge(app_coordinator, settings.mqtt_url).run)
                    yield
                    tg.cancel_scope.cancel()
                finally:
                    app_hooks.pm.unregister(name=claims_name)
        finally:
            if owns_db:
                app_db.dispose()

    app = FastAPI(
        title="wowlab portal",
        version=__version__,
        summary="World of Warcraft combat simulations on a pool of volunteer PCs.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(
        SessionMiddleware,
        secret_key=resolve_secret_key(settings.secret_key),
        session_cookie="wowlab_session",
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.https_only,
    )
    app.include_router(health.router)
    app.include_router(node.router)
    app.include_router(accounts.router)
    app.include_router(social.router)
    app.include_router(nodes.router)
    app.include_router(jobs.router)
    app.include_router(metrics.router)
    install_pages(app)
    return app


__all__ = ["create_app"]
