"""The portal's application factory.

``create_app()`` builds the FastAPI app; its lifespan builds what the routes share and
keeps it on ``app.state``: ``settings``, ``hooks`` (the plugins), ``db`` (the database
engine), ``coordinator`` (the node-facing operations) and the long-poll wake-ups. Tests
and embedders pass their own ``hooks``, ``db`` or ``coordinator`` instead.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from anyio.from_thread import BlockingPortal
from fastapi import FastAPI
from sqlalchemy.engine import Engine as DbEngine
from starlette.middleware.sessions import SessionMiddleware

from wowlab_core import __version__
from wowlab_core.claim_codes import RateLimiter
from wowlab_core.coordinator import Coordinator
from wowlab_core.db import create_db_engine, is_postgres
from wowlab_core.errors import TransportUnavailable
from wowlab_core.plugins import Hooks, get_hooks
from wowlab_core.profileset_chain import ProfileSetChain
from wowlab_core.rate_limits import DatabaseRateLimiter
from wowlab_core.wakeups import Wakeups
from wowlab_portal.accounts import password_hasher
from wowlab_portal.api.errors import install_error_handlers
from wowlab_portal.api.routes import (
    accounts,
    health,
    jobs,
    metrics,
    node,
    nodes,
    notices,
    social,
)
from wowlab_portal.database_wait import wait_for_database
from wowlab_portal.long_poll import ClaimSignal, RecentNodes, WorkBroadcast
from wowlab_portal.metrics import Histogram
from wowlab_portal.proxies import TrustedProxies
from wowlab_portal.request_limits import BodyLimit, JsonDepthLimit
from wowlab_portal.secret_key import resolve_secret_key
from wowlab_portal.security_headers import SecurityHeaders, install_docs
from wowlab_portal.settings import PortalSettings
from wowlab_portal.web import install_pages
from wowlab_portal.web.error_pages import install_error_pages

log = logging.getLogger(__name__)


def make_limiter(
    settings: PortalSettings, db: DbEngine, *, name: str, limit: int, window_seconds: float = 60
) -> RateLimiter:
    """A rate limiter every worker shares: in Redis when ``redis_url`` is set, else in
    PostgreSQL; on SQLite (one process) in memory."""
    if settings.redis_url:
        from wowlab_portal.redis_limits import RedisRateLimiter, redis_client

        client = redis_client(settings.redis_url)
        return RedisRateLimiter(client, name=name, limit=limit, window_seconds=window_seconds)
    if is_postgres(db):
        return DatabaseRateLimiter(db, name=name, limit=limit, window_seconds=window_seconds)
    return RateLimiter(limit=limit, window_seconds=window_seconds)


def make_limiters(settings: PortalSettings, db: DbEngine) -> dict[str, RateLimiter]:
    """The rate limiters of user actions, by name (windows of one minute)."""
    # Per account, wrong passwords are throttled per (account, address) in the database
    # (wowlab_portal.login_throttle): no limit here may lock an owner out.
    per_minute = {
        "login_address": settings.login_limit_per_address_per_minute,
        "signup_address": settings.login_limit_per_address_per_minute,
        "claim_user": settings.claim_limit_per_minute,
        "claim_address": settings.claim_limit_per_address_per_minute,
    }
    return {name: make_limiter(settings, db, name=name, limit=n) for name, n in per_minute.items()}


async def _resume_profile_sets(chain: ProfileSetChain) -> None:
    """Submit the next stage of profile sets a restart interrupted (best effort: a database
    that is not reachable yet must not stop the portal from starting)."""
    try:
        await anyio.to_thread.run_sync(chain.resume)
    except Exception:
        log.warning("profile sets: could not resume interrupted chains", exc_info=True)


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
            await anyio.to_thread.run_sync(
                lambda: wait_for_database(app_db, total_seconds=settings.database_wait_seconds)
            )
        app_coordinator = coordinator or Coordinator(
            app_db, hooks=app_hooks, settings=settings.coordinator_settings()
        )
        # Several workers (or hosts) on one PostgreSQL: wake-ups cross them.
        wakeups: Wakeups | None = None
        unshare = None
        if app_coordinator.wakeups is None and is_postgres(app_db):
            wakeups = Wakeups(app_db)
            unshare = app_coordinator.share_wakeups(wakeups)
            await anyio.to_thread.run_sync(wakeups.start)
        work = WorkBroadcast(app_coordinator.work)
        app.state.settings = settings
        app.state.hooks = app_hooks
        app.state.db = app_db
        app.state.coordinator = app_coordinator
        app.state.work = work
        app.state.recent_nodes = RecentNodes()
        app.state.register_limiter = make_limiter(
            settings, app_db, name="register_address", limit=settings.register_limit_per_minute
        )
        app.state.limiters = make_limiters(settings, app_db)
        app.state.lease_latency = Histogram()
        app.state.passwords = password_hasher(
            time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib
        )
        try:
            if not routers_added:
                routers_added = True
                app_hooks.portal_routers(app=app)
            if settings.mqtt_url and "mqtt" not in app_hooks.transports():
                raise TransportUnavailable(
                    "mqtt_url is set but the mqtt transport is not installed: "
                    "pip install 'wowlab[mqtt]'",
                    field="mqtt_url",
                )
            async with BlockingPortal() as portal, anyio.create_task_group() as tg:
                claims = ClaimSignal(portal, app_coordinator.wakeups)
                app.state.claims = claims
                # Profile sets: each finished stage job submits the next stage.
                chain = ProfileSetChain(app_db, app_hooks, app_coordinator.notify_work)
                with (
                    app_hooks.listen(claims, name=f"wowlab-portal-claims-{id(claims)}"),
                    app_hooks.listen(chain, name=f"wowlab-portal-profilesets-{id(chain)}"),
                ):
                    tg.start_soon(work.run)
                    tg.start_soon(_resume_profile_sets, chain)
                    # Transports' server sides (the MQTT bridge ...) run inside the portal.
                    for service in app_hooks.portal_services(app=app):
                        await tg.start(service)
                    yield
                    tg.cancel_scope.cancel()
        finally:
            # A job whose last result came in just now is merged before the database goes
            # (if this takes too long, the next process's reaper merges it).
            await anyio.to_thread.run_sync(lambda: app_coordinator.settle(10.0))
            if wakeups is not None and unshare is not None:
                unshare()
                await anyio.to_thread.run_sync(wakeups.stop)
            if owns_db:
                app_db.dispose()

    app = FastAPI(
        title="wowlab portal",
        version=__version__,
        summary="World of Warcraft combat simulations on a pool of volunteer PCs.",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, with its own Content-Security-Policy
        redoc_url=None,
    )
    install_error_handlers(app)
    install_error_pages(app)  # browsers get pages; the API and scripts keep the JSON
    # Middleware added last runs first: headers on every answer, then the real client
    # address, then the body limits, before anything reads the body or the session.
    app.add_middleware(
        SessionMiddleware,
        secret_key=resolve_secret_key(settings.secret_key),
        session_cookie="wowlab_session",
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.https_only,
    )
    app.add_middleware(JsonDepthLimit)
    submissions = {("POST", "/api/v1/jobs"): settings.max_submission_bytes}
    submissions[("POST", "/jobs/new")] = settings.max_submission_bytes
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, larger=submissions)
    app.add_middleware(TrustedProxies, networks=settings.trusted_networks())
    app.add_middleware(SecurityHeaders)
    install_docs(app)
    app.include_router(health.router)
    app.include_router(node.router)
    app.include_router(accounts.router)
    app.include_router(social.router)
    app.include_router(nodes.router)
    app.include_router(jobs.router)
    app.include_router(notices.router)
    app.include_router(metrics.router)
    install_pages(app)
    return app


__all__ = ["create_app", "make_limiter", "make_limiters"]
