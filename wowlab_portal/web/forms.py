"""What every page shares: templates, the logged-in user, CSRF-checked forms, flashes.

Pages log in with the same signed session as the API. Every form carries the session's
CSRF token in a hidden ``csrf_token`` field; a POST without the right one is refused, so
another site cannot submit forms on a user's behalf (the API takes the same token in a
header instead).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from wowlab_core.errors import PermissionDenied
from wowlab_core.models import User
from wowlab_portal.api.deps import (
    SESSION_CSRF,
    SESSION_USER,
    check_origin,
    db_session,
    new_csrf_token,
)

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

FLASH = "flash"


class LoginRequired(Exception):
    """A page needs a logged-in user; answered with a redirect to the log-in page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use, also before logging in)."""
    token = request.session.get(SESSION_CSRF)
    if not isinstance(token, str):
        token = new_csrf_token()
        request.session[SESSION_CSRF] = token
    return token


def check_form_csrf(
    request: Request, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> None:
    """Refuse a form post without this session's CSRF token, or from another site."""
    check_origin(request)
    expected = request.session.get(SESSION_CSRF)
    if not isinstance(expected, str) or not secrets.compare_digest(csrf_token, expected):
        raise PermissionDenied("this form has expired: reload the page and try again")


def optional_user(
    request: Request, session: Annotated[Session, Depends(db_session)]
) -> User | None:
    """The logged-in user, or None."""
    user_id = request.session.get(SESSION_USER)
    return session.get(User, user_id) if isinstance(user_id, int) else None


def page_user(request: Request, user: Annotated[User | None, Depends(optional_user)]) -> User:
    """The logged-in user; anyone else is sent to the log-in page and back."""
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return user


PageUser = Annotated[User, Depends(page_user)]
MaybeUser = Annotated[User | None, Depends(optional_user)]
CsrfChecked = Depends(check_form_csrf)


def flash(request: Request, message: str) -> None:
    """A one-line notice shown on the next page."""
    request.session[FLASH] = message


def render(
    request: Request,
    template: str,
    user: User | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page, with the user, CSRF token and pending notice every layout needs."""
    return templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "csrf_token": csrf_token(request),
            "flash": request.session.pop(FLASH, None),
            "errors": context.pop("errors", {}),
            **context,
        },
        status_code=status_code,
    )


def redirect(url: str) -> RedirectResponse:
    """See-other redirect after a successful form post."""
    return RedirectResponse(url, status_code=303)


def install_redirects(app: FastAPI) -> None:
    """Send users who are not logged in to the log-in page."""

    async def to_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return redirect(f"/login?next={quote(exc.next_url, safe='/')}")

    app.add_exception_handler(LoginRequired, to_login)


__all__ = [
    "CsrfChecked",
    "MaybeUser",
    "PageUser",
    "flash",
    "install_redirects",
    "redirect",
    "render",
    "templates",
]


def field_errors(exc: Exception, default_field: str) -> dict[str, str]:
    """Messages by form field, from a wowlab error or a pydantic validation error."""
    from pydantic import ValidationError

    from wowlab_core.errors import WowlabError

    if isinstance(exc, ValidationError):
        return {str(e["loc"][0]) if e["loc"] else default_field: e["msg"] for e in exc.errors()}
    if isinstance(exc, WowlabError):
        return {(exc.field or default_field).split(".")[0]: exc.message}
    raise exc
