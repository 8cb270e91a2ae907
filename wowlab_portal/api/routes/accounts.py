"""Accounts: sign up, log in, log out, who am I, personal API tokens.

Logging in puts the user id and a CSRF token into the signed session cookie and mirrors
the CSRF token in the readable ``wowlab_csrf`` cookie; pages send it back in
``X-CSRF-Token`` on every unsafe request (see :func:`~wowlab_portal.api.deps.current_user`).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from wowlab_core.models import ApiToken, User
from wowlab_portal import accounts
from wowlab_portal.api.deps import (
    CSRF_COOKIE,
    SESSION_CSRF,
    SESSION_USER,
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


class TokenCreate(BaseModel):
    """A name for a new API token (what it is for)."""

    name: str = Field(max_length=100)


class TokenPublic(BaseModel):
    """An API token, without the secret."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


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
    )


def _start_session(
    request: Request, response: Response, user: User, settings: SettingsDep
) -> SessionPublic:
    csrf = new_csrf_token()
    request.session.clear()
    request.session[SESSION_USER] = user.id
    request.session[SESSION_CSRF] = csrf
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=settings.session_max_age_seconds,
        samesite="lax",
        secure=settings.https_only,
        httponly=False,  # pages' scripts read it to send it back
    )
    return SessionPublic(user=user_public(user), csrf_token=csrf)


@router.post("/auth/signup", status_code=201, dependencies=[Depends(check_origin)])
def signup(
    request: Request,
    response: Response,
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
    session.commit()
    return _start_session(request, response, user, settings)


@router.post("/auth/login", dependencies=[Depends(check_origin)])
def login(
    request: Request,
    response: Response,
    body: Credentials,
    session: SessionDep,
    passwords: PasswordsDep,
    limiters: LimitersDep,
    settings: SettingsDep,
) -> SessionPublic:
    """Log in with username and password (rate-limited per account and per address)."""
    # Count the attempt before the password is looked at: guessing is what is limited.
    limiters["login_address"].hit(
        f"address:{client_address(request)}", what="login attempts from your address"
    )
    limiters["login_user"].hit(
        f"user:{body.username.lower()}", what="login attempts for this account"
    )
    user = accounts.authenticate_user(
        session, username=body.username, password=body.password, passwords=passwords
    )
    session.commit()  # a rehashed password
    return _start_session(request, response, user, settings)


@router.post("/auth/logout", status_code=204)
def logout(request: Request, response: Response, user: CurrentUser) -> None:
    """End the session (API tokens stay valid; revoke them separately)."""
    request.session.clear()
    response.delete_cookie(CSRF_COOKIE)


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
    """Make an API token; the token is in this answer only."""
    new = accounts.create_api_token(session, user=user, name=body.name)
    session.commit()
    return TokenCreated(**token_public(new.row).model_dump(), token=new.token)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(user: CurrentUser, session: SessionDep, token_id: IdPath) -> None:
    """Revoke one of my API tokens."""
    accounts.revoke_api_token(session, user=user, token_id=token_id)
    session.commit()


__all__ = ["UserPublic", "router", "user_public"]
