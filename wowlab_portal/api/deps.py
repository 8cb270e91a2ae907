"""Dependencies of the routes, as ``Annotated`` aliases (``CoordinatorDep``, ``NodeDep``, ...)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pwdlib import PasswordHash
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session

from wowlab_core.claim_codes import RateLimiter
from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session, write_session
from wowlab_core.errors import AuthenticationFailed, PermissionDenied
from wowlab_core.http_client import NODE_HEADER
from wowlab_core.models import ApiToken, User, WebSession, utcnow
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import NodeCredentials
from wowlab_portal import web_sessions
from wowlab_portal.accounts import TOKEN_PREFIX, token_needs_touch, user_for_token
from wowlab_portal.long_poll import ClaimSignal, RecentNodes, WorkBroadcast
from wowlab_portal.settings import PortalSettings
from wowlab_portal.supabase_auth import looks_like_jwt, user_for_supabase_token

# Node ids are positive 64-bit integers.
_NODE_ID = re.compile(r"[0-9]{1,18}")

node_token = HTTPBearer(
    auto_error=False,
    scheme_name="NodeToken",
    description="The node's secret token from its registration: `Authorization: Bearer <token>`.",
)
node_id_header = APIKeyHeader(
    name=NODE_HEADER,
    auto_error=False,
    scheme_name="NodeId",
    description=f"The node's id from its registration: `{NODE_HEADER}: <node id>`.",
)


def get_settings(request: Request) -> PortalSettings:
    """The portal's settings."""
    settings: PortalSettings = request.app.state.settings
    return settings


def get_hooks(request: Request) -> Hooks:
    """The portal's plugin hooks."""
    hooks: Hooks = request.app.state.hooks
    return hooks


def get_coordinator(request: Request) -> Coordinator:
    """The portal's coordinator."""
    coordinator: Coordinator = request.app.state.coordinator
    return coordinator


def get_work(request: Request) -> WorkBroadcast:
    """Wake-ups for nodes waiting for work."""
    work: WorkBroadcast = request.app.state.work
    return work


def get_claims(request: Request) -> ClaimSignal:
    """Wake-ups for nodes waiting to be claimed."""
    claims: ClaimSignal = request.app.state.claims
    return claims


def get_recent_nodes(request: Request) -> RecentNodes:
    """Credentials the coordinator accepted lately."""
    recent: RecentNodes = request.app.state.recent_nodes
    return recent


def node_credentials(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(node_token)],
    node_id: Annotated[str | None, Depends(node_id_header)],
) -> NodeCredentials:
    """The calling node's credentials, from ``Authorization`` and ``X-Wowlab-Node``.

    Only their form is checked here: the coordinator call the route makes checks the
    token against the database in its own transaction (one round trip, not two).
    """
    if bearer is None or not bearer.credentials:
        raise AuthenticationFailed(
            "missing node token: send 'Authorization: Bearer <token>'", field="Authorization"
        )
    if node_id is None or not _NODE_ID.fullmatch(node_id.strip()):
        raise AuthenticationFailed(
            f"missing or malformed node id: send '{NODE_HEADER}: <node id>'", field=NODE_HEADER
        )
    return NodeCredentials(node_id=int(node_id), token=bearer.credentials)


# --- users ----------------------------------------------------------------------------

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The key of the session id in the signed session cookie (see :mod:`..web_sessions`).
SESSION_ID = "sid"
SESSION_CSRF = "csrf"
CSRF_HEADER = "X-CSRF-Token"

user_token = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description=f"A personal API token: `Authorization: Bearer {TOKEN_PREFIX}...`.",
)
csrf_header = APIKeyHeader(
    name=CSRF_HEADER,
    auto_error=False,
    scheme_name="CsrfToken",
    description=(
        "With the session cookie, unsafe requests send the `csrf_token` of the log-in answer here."
    ),
)


def get_db(request: Request) -> DbEngine:
    """The portal's database engine."""
    db: DbEngine = request.app.state.db
    return db


def db_session(request: Request) -> Iterator[Session]:
    """A session for this request: reads share, writes take SQLite's write lock up front."""
    opener = read_session if request.method in SAFE_METHODS else write_session
    with opener(get_db(request)) as session:
        yield session


def get_passwords(request: Request) -> PasswordHash:
    """The password hasher."""
    passwords: PasswordHash = request.app.state.passwords
    return passwords


def client_address(request: Request) -> str:
    """The caller's address (behind a trusted proxy, the one it forwarded: see
    :mod:`wowlab_portal.proxies`)."""
    return request.client.host if request.client else "unknown"


def _touch(request: Request, session: Session, row: ApiToken | WebSession, field: str) -> None:
    """Write ``row.<field> = now`` (a last-used time), without taking a second write lock."""
    if request.method not in SAFE_METHODS:
        # This request's session holds the write lock; the route commits it.
        setattr(row, field, utcnow())
        session.add(row)
        return
    with write_session(get_db(request)) as writer:
        fresh = writer.get(type(row), sa_inspect(row).identity)
        if fresh is not None:
            setattr(fresh, field, utcnow())
            writer.add(fresh)
            writer.commit()


def session_login(request: Request, session: Session) -> User | None:
    """The user of this request's browser session, if it is live on the server.

    A cookie whose session was ended (log out, password change, "log out everywhere")
    or has expired is emptied, so the browser stops sending it.
    """
    session_id = request.session.get(SESSION_ID)
    if session_id is None:
        return None
    found = web_sessions.session_user(session, session_id=session_id)
    if found is None:
        request.session.clear()
        return None
    user, row = found
    if web_sessions.needs_touch(row):
        _touch(request, session, row, "last_seen_at")
    return user


def check_origin(request: Request) -> None:
    """Refuse a browser's cross-site request: its ``Origin`` must be this portal's."""
    origin = request.headers.get("origin")
    if origin is None or request.method in SAFE_METHODS:
        return
    if origin == "null" or urlsplit(origin).netloc != request.headers.get("host"):
        raise PermissionDenied(f"cross-site request from {origin} refused", field="Origin")


def new_csrf_token() -> str:
    """A fresh CSRF token (kept in the signed session and mirrored in a readable cookie)."""
    return secrets.token_urlsafe(24)


def current_user(
    request: Request,
    session: Annotated[Session, Depends(db_session)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(user_token)],
    csrf: Annotated[str | None, Depends(csrf_header)],
) -> User:
    """The calling user: by API token (or a Supabase Auth session when
    ``supabase_jwt_secret`` is set), else by session cookie (plus CSRF token on writes).

    A browser sends cookies on its own, so a cookie-authenticated unsafe request must also
    carry the session's CSRF token in ``X-CSRF-Token``, which another site cannot read.
    A bearer token is never sent by a browser on its own, so it needs no CSRF token.
    """
    secret = get_settings(request).supabase_jwt_secret
    if bearer is not None and secret and looks_like_jwt(bearer.credentials):
        return user_for_supabase_token(session, token=bearer.credentials, secret=secret)
    if bearer is not None:
        token_user, row = user_for_token(session, token=bearer.credentials)
        if token_needs_touch(row):
            _touch(request, session, row, "last_used_at")
        return token_user
    user = session_login(request, session)
    if user is None:
        raise AuthenticationFailed(
            f"log in, or send 'Authorization: Bearer {TOKEN_PREFIX}...'", field="Authorization"
        )
    if request.method not in SAFE_METHODS:
        check_origin(request)
        expected = request.session.get(SESSION_CSRF)
        if not csrf or not isinstance(expected, str) or not secrets.compare_digest(csrf, expected):
            raise PermissionDenied(
                f"missing or wrong CSRF token: send the log-in answer's csrf_token in "
                f"{CSRF_HEADER}",
                field=CSRF_HEADER,
            )
    return user


def get_limiters(request: Request) -> dict[str, RateLimiter]:
    """The portal's rate limiters by name (``login_address``, ``claim_address``, ...)."""
    limiters: dict[str, RateLimiter] = request.app.state.limiters
    return limiters


#: A row id in a path: positive and within a 64-bit integer (larger would overflow SQL).
#: A row id: positive and within a 32-bit integer (the id columns are INTEGER: a larger
#: number would overflow PostgreSQL's int4 and fail the query).
MAX_ID = 2**31 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
SessionDep = Annotated[Session, Depends(db_session)]
CurrentUser = Annotated[User, Depends(current_user)]
PasswordsDep = Annotated[PasswordHash, Depends(get_passwords)]
LimitersDep = Annotated[dict[str, RateLimiter], Depends(get_limiters)]

SettingsDep = Annotated[PortalSettings, Depends(get_settings)]
HooksDep = Annotated[Hooks, Depends(get_hooks)]
CoordinatorDep = Annotated[Coordinator, Depends(get_coordinator)]
WorkDep = Annotated[WorkBroadcast, Depends(get_work)]
ClaimsDep = Annotated[ClaimSignal, Depends(get_claims)]
RecentNodesDep = Annotated[RecentNodes, Depends(get_recent_nodes)]
#: The calling node: its credentials, authenticated by the coordinator call that uses them.
NodeDep = Annotated[NodeCredentials, Depends(node_credentials)]

__all__ = [
    "CSRF_HEADER",
    "ClaimsDep",
    "CoordinatorDep",
    "CurrentUser",
    "HooksDep",
    "IdPath",
    "LimitersDep",
    "NodeDep",
    "PasswordsDep",
    "RecentNodesDep",
    "SessionDep",
    "SettingsDep",
    "WorkDep",
    "check_origin",
    "client_address",
    "new_csrf_token",
    "session_login",
]
