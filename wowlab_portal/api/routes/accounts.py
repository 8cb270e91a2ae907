"""Accounts: sign up, log in, log out (here or everywhere), password change, who am I,
personal API tokens.

Logging in starts a server-side session (:mod:`wowlab_portal.web_sessions`): its id and
a CSRF token go into the signed, HttpOnly session cookie, and the CSRF token is in the
answer; unsafe requests send it back in ``X-CSRF-Token`` (see
:func:`~wowlab_portal.api.deps.current_user`). No cookie is readable by scripts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlmodel import Session

from wowlab_core.errors import AuthenticationFailed
from wowlab_core.models import ApiToken, User
from wowlab_portal import accounts, web_sessions
from wowlab_portal.api.deps import (
    SESSION_CSRF,
    SESSION_ID,
    CurrentUser,
    IdPath,
    LimitersDep,
    PasswordsDep,
    SessionDep,
    SettingsDep,
    check_origin,
    client_address,
    new_csrf_token,
)
from wowlab_portal.api.errors import USER_ERRORS
from wowlab_portal.login_throttle import LoginThrottle
from wowlab_portal.settings import PortalSettings

router = APIRouter(prefix="/api/v1", tags=["accounts"], responses=USER_ERRORS)


class Credentials(BaseModel):
    """A username and password."""

    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


class SignUp(Credentials):
    """A new account."""

    email: str | None = Field(default=None, max_length=254)


class UserPublic(BaseModel):
    """An account as its owner sees it."""

    id: int
    username: str
    email: str | None = None
    is_admin: bool
    created_at: datetime


class SessionPublic(BaseModel):
    """The logged-in user and the CSRF token to send in ``X-CSRF-Token``."""

    user: UserPublic
    csrf_token: str


class PasswordChange(BaseModel):
    """The current password, and the new one."""

    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


class PasswordChanged(BaseModel):
    """Every session of the account was ended. A caller with a session cookie got a new
    session, whose CSRF token is here (null for a caller with an API token)."""

    csrf_token: str | None


class TokenCreate(BaseModel):
    """A name for a new API token (what it is for), and optionally its lifetime."""

    name: str = Field(max_length=100)
    expires_in_days: int | None = Field(
        default=None, ge=1, le=3650, description="Refuse the token after this many days."
    )


class TokenPublic(BaseModel):
    """An API token, without the secret."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class TokenCreated(TokenPublic):
    """A new API token: ``token`` is shown this once."""

    token: str


def user_public(user: User) -> UserPublic:
    """The public form of an account."""
    return UserPublic(
        id=user.id or 0,
        username=user.username,
        email=user.email,
        is_admin=user.is_admin,
        created_at=user.created_at,
    )


def token_public(row: ApiToken) -> TokenPublic:
    """The public form of a token."""
    return TokenPublic(
        id=row.id or 0,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
    )


def login_throttle(settings: PortalSettings) -> LoginThrottle:
    """The login throttle of these settings."""
    return LoginThrottle(
        free=settings.login_free_failures,
        base_seconds=settings.login_backoff_seconds,
        cap_seconds=settings.login_backoff_max_seconds,
    )


def start_session(
    request: Request, session: Session, user: User, settings: PortalSettings
) -> SessionPublic:
    """A new server-side session for ``user``, in a fresh cookie. Commits."""
    session_id = web_sessions.start_session(
        session, user=user, lifetime=timedelta(seconds=settings.session_max_age_seconds)
    )
    session.commit()
    csrf = new_csrf_token()
    request.session.clear()  # nothing from before the log-in survives (session fixation)
    request.session[SESSION_ID] = session_id
    request.session[SESSION_CSRF] = csrf
    return SessionPublic(user=user_public(user), csrf_token=csrf)


def has_session_cookie(request: Request) -> bool:
    """Whether the caller is a browser session (not an API token)."""
    return "authorization" not in request.headers and SESSION_ID in request.session


@router.post("/auth/signup", status_code=201, dependencies=[Depends(check_origin)])
def signup(
    request: Request,
    body: SignUp,
    session: SessionDep,
    passwords: PasswordsDep,
    limiters: LimitersDep,
    settings: SettingsDep,
) -> SessionPublic:
    """Create an account and log in."""
    limiters["signup_address"].hit(f"address:{client_address(request)}", what="sign-ups")
    user = accounts.create_user(
        session,
        username=body.username,
        password=body.password,
        passwords=passwords,
        email=body.email,
    )
    return start_session(request, session, user, settings)


@router.post("/auth/login", dependencies=[Depends(check_origin)])
def login(
    request: Request,
    body: Credentials,
    session: SessionDep,
    passwords: PasswordsDep,
    limiters: LimitersDep,
    settings: SettingsDep,
) -> SessionPublic:
    """Log in with username and password.

    Wrong passwords slow their (account, address) pair down with growing delays; the
    owner logging in from their own address is not held up by a stranger's guesses.
    """
    address = client_address(request)
    # Count the attempt before the password is looked at: guessing is what is limited.
    limiters["login_address"].hit(f"address:{address}", what="login attempts from your address")
    throttle = login_throttle(settings)
    throttle.check(session, username=body.username, address=address)
    try:
        user = accounts.authenticate_user(
            session, username=body.username, password=body.password, passwords=passwords
        )
    except AuthenticationFailed:
        throttle.failed(session, username=body.username, address=address)
        session.commit()
        raise
    throttle.succeeded(session, username=body.username, address=address)
    return start_session(request, session, user, settings)  # commits a rehashed password too


@router.post("/auth/logout", status_code=204)
def logout(request: Request, user: CurrentUser, session: SessionDep) -> None:
    """End this session on the server (API tokens stay valid; revoke them separately)."""
    web_sessions.end_session(session, session_id=request.session.get(SESSION_ID))
    session.commit()
    request.session.clear()


@router.post("/auth/logout-all", status_code=204)
def logout_everywhere(request: Request, user: CurrentUser, session: SessionDep) -> None:
    """End every browser session of my account, this one included (API tokens stay)."""
    web_sessions.end_all_sessions(session, user=user)
    session.commit()
    if has_session_cookie(request):
        request.session.clear()


@router.post("/auth/password")
def change_password(
    request: Request,
    body: PasswordChange,
    user: CurrentUser,
    session: SessionDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
) -> PasswordChanged:
    """Change my password: every session of the account ends (a session-cookie caller
    gets a new one). Wrong current passwords are throttled like log-ins."""
    address = client_address(request)
    throttle = login_throttle(settings)
    throttle.check(session, username=user.username, address=address, field="current_password")
    try:
        accounts.change_password(
            session,
            user=user,
            current=body.current_password,
            new=body.new_password,
            passwords=passwords,
        )
    except AuthenticationFailed:
        throttle.failed(session, username=user.username, address=address)
        session.commit()
        raise
    if has_session_cookie(request):
        fresh = start_session(request, session, user, settings)
        return PasswordChanged(csrf_token=fresh.csrf_token)
    session.commit()
    return PasswordChanged(csrf_token=None)


@router.get("/me")
def me(user: CurrentUser) -> UserPublic:
    """The calling user."""
    return user_public(user)


@router.get("/tokens")
def list_tokens(user: CurrentUser, session: SessionDep) -> list[TokenPublic]:
    """My API tokens (without their secrets)."""
    return [token_public(t) for t in accounts.list_api_tokens(session, user=user)]


@router.post("/tokens", status_code=201)
def create_token(user: CurrentUser, session: SessionDep, body: TokenCreate) -> TokenCreated:
    """Make an API token (optionally expiring); the token is in this answer only."""
    lifetime = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    new = accounts.create_api_token(session, user=user, name=body.name, lifetime=lifetime)
    session.commit()
    return TokenCreated(**token_public(new.row).model_dump(), token=new.token)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(user: CurrentUser, session: SessionDep, token_id: IdPath) -> None:
    """Revoke one of my API tokens."""
    accounts.revoke_api_token(session, user=user, token_id=token_id)
    session.commit()


__all__ = ["UserPublic", "login_throttle", "router", "start_session", "user_public"]
