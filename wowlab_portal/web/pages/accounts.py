"""Sign up, log in, log out, my account (change the password, log out everywhere)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from wowlab_core.errors import WowlabError
from wowlab_portal.api.deps import LimitersDep, PasswordsDep, SessionDep, SettingsDep
from wowlab_portal.api.routes import accounts as api
from wowlab_portal.web.forms import (
    Confirmed,
    CsrfChecked,
    MaybeUser,
    PageUser,
    ask_first,
    flash,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form(max_length=256)]


def _safe_next(url: str) -> str:
    # Only paths on this site: an open redirect would help phishing.
    return url if url.startswith("/") and not url.startswith("//") else "/nodes"


@router.get("/")
def home(request: Request, user: MaybeUser) -> Response:
    """My nodes; for visitors, what wowlab is and how to join."""
    if user is not None:
        return redirect("/nodes")
    return render(request, "landing.html", None, portal_url=str(request.base_url).rstrip("/"))


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
    username: Text = "",
    password: Text = "",
) -> Response:
    """Create the account and log in."""
    errors = {}
    if not username.strip():
        errors["username"] = "Choose a username."
    if not password:
        errors["password"] = "Choose a password."
    if errors:
        return render(request, "signup.html", None, 422, errors=errors, username=username)
    try:
        api.signup(
            request,
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
    return redirect("/nodes")


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
    username: Text = "",
    password: Text = "",
    next: Text = "/nodes",
) -> Response:
    """Log in and go where the user was going."""
    if not username.strip() or not password:
        errors = {"username": "Enter your username."} if not username.strip() else {}
        if not password:
            errors["password"] = "Enter your password."
        return render(
            request, "login.html", None, 422, errors=errors, username=username,
            next=_safe_next(next),
        )  # fmt: skip
    try:
        api.login(
            request,
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
    return redirect(_safe_next(next))


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, user: PageUser, session: SessionDep) -> Response:
    """End the session."""
    api.logout(request, user, session)
    return redirect("/login")


@router.get("/account")
def account_page(request: Request, user: PageUser) -> Response:
    """Change my password; log out everywhere."""
    return render(request, "account.html", user)


@router.post("/account/password", dependencies=[CsrfChecked])
def change_password(
    request: Request,
    user: PageUser,
    session: SessionDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    current_password: Text = "",
    new_password: Text = "",
    confirm_password: Text = "",
) -> Response:
    """Change the password; every other session of the account ends."""
    errors: dict[str, str] = {}
    status = 422
    if not current_password:
        errors["current_password"] = "Enter your current password."
    if not new_password:
        errors["new_password"] = "Choose a new password."
    elif new_password != confirm_password:
        errors["confirm_password"] = "The two new passwords differ."
    if not errors:
        try:
            api.change_password(
                request,
                api.PasswordChange(current_password=current_password, new_password=new_password),
                user,
                session,
                passwords,
                settings,
            )
        except WowlabError as exc:
            session.rollback()
            errors[exc.field or "new_password"] = exc.message
            status = 400 if exc.status_code == 401 else exc.status_code
    if errors:
        return render(request, "account.html", user, status, errors=errors)
    flash(request, "Password changed. Your other sessions are logged out.")
    return redirect("/account")


@router.post("/account/logout-all", dependencies=[CsrfChecked])
def logout_everywhere(
    request: Request, user: PageUser, session: SessionDep, confirmed: Confirmed = ""
) -> Response:
    """End every session of the account, this one too (asked first)."""
    if confirmed != "yes":
        return ask_first(
            request, user, question="Log out of every browser, this one too?",
            action="/account/logout-all", button="Log out everywhere", back="/account",
        )  # fmt: skip
    api.logout_everywhere(request, user, session)
    flash(request, "You are logged out everywhere.")
    return redirect("/login")


__all__ = ["router"]
