"""Sign up, log in, log out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from wowlab_core.errors import WowlabError
from wowlab_portal.api.deps import LimitersDep, PasswordsDep, SessionDep, SettingsDep
from wowlab_portal.api.routes import accounts as api
from wowlab_portal.web.forms import CsrfChecked, MaybeUser, PageUser, redirect, render

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form(max_length=256)]


def _safe_next(url: str) -> str:
    # Only paths on this site: an open redirect would help phishing.
    return url if url.startswith("/") and not url.startswith("//") else "/nodes"


@router.get("/")
def home(user: MaybeUser) -> Response:
    """My nodes, or the log-in page."""
    return redirect("/nodes" if user else "/login")


@router.get("/signup")
def signup_page(request: Request, user: MaybeUser) -> Response:
    """The sign-up form."""
    return render(request, "signup.html", user)


@router.post("/signup", dependencies=[CsrfChecked])
def signup(
    request: Request,
    session: SessionDep,
    passwords: PasswordsDep,
    limiters: LimitersDep,
    settings: SettingsDep,
    username: Text,
    password: Text,
) -> Response:
    """Create the account and log in."""
    response = redirect("/nodes")
    try:
        api.signup(
            request,
            response,
            api.SignUp(username=username, password=password),
            session,
            passwords,
            limiters,
            settings,
        )
    except WowlabError as exc:
        session.rollback()
        errors = {exc.field or "username": exc.message}
        return render(request, "signup.html", None, 422, errors=errors, username=username)
    return response


@router.get("/login")
def login_page(request: Request, user: MaybeUser, next: str = "/nodes") -> Response:
    """The log-in form."""
    return render(request, "login.html", user, next=_safe_next(next))


@router.post("/login", dependencies=[CsrfChecked])
def login(
    request: Request,
    session: SessionDep,
    passwords: PasswordsDep,
    limiters: LimitersDep,
    settings: SettingsDep,
    username: Text,
    password: Text,
    next: Text = "/nodes",
) -> Response:
    """Log in and go where the user was going."""
    response = redirect(_safe_next(next))
    try:
        api.login(
            request,
            response,
            api.Credentials(username=username, password=password),
            session,
            passwords,
            limiters,
            settings,
        )
    except WowlabError as exc:
        return render(
            request,
            "login.html",
            None,
            exc.status_code if exc.status_code != 401 else 400,
            errors={"password": exc.message},
            username=username,
            next=_safe_next(next),
        )
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, user: PageUser) -> Response:
    """End the session."""
    response = redirect("/login")
    api.logout(request, response, user)
    return response


__all__ = ["router"]
