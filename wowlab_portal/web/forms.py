"""What every page shares: templates, the logged-in user, CSRF-checked forms, flashes.

Pages log in with the same server-side session as the API. Every form carries the
session's CSRF token in a hidden ``csrf_token`` field; a POST without the right one is
refused, so another site cannot submit forms on a user's behalf (the API takes the same
token in a header instead).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
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
    check_origin,
    db_session,
    new_csrf_token,
    session_login,
)

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


#: What a table shows where there is no number (an en dash).
NO_VALUE = "\u2013"


def num(value: object, digits: int = 0) -> str:
    """A number with thousands separators (``12,345``, ``1,234.5``); a dash for none."""
    if value is None or value == "":
        return NO_VALUE
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(str(value))
        except ValueError:
            return str(value)
    if isinstance(value, int) and digits == 0:
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _as_utc(moment: datetime) -> datetime:
    # The database keeps naive UTC times.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC, for ``<time datetime>``: ``2026-11-29T22:47:05Z``."""
    return _as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc(moment: datetime) -> str:
    """A time for people, with its zone: ``2026-11-29 22:47 UTC``."""
    return _as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def sentence(text: str) -> str:
    """A message as a sentence: capital first letter, closing full stop."""
    text = str(text).strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?", ")")) else ".")


templates.env.filters.update(num=num, iso_utc=iso_utc, utc=utc, sentence=sentence)

FLASH = "flash"
#: Why a form post without this session's CSRF token is refused (the error page knows it).
FORM_EXPIRED = "this form has expired: reload the page and try again"


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
        raise PermissionDenied(FORM_EXPIRED)


def optional_user(
    request: Request, session: Annotated[Session, Depends(db_session)]
) -> User | None:
    """The logged-in user (a session that is live on the server), or None."""
    return session_login(request, session)


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


#: What a confirmed destructive form sends: confirm.js adds it when the user says OK in its
#: dialog; without JavaScript the server asks on a page of its own (see ``ask_first``).
Confirmed = Annotated[str, Form(max_length=3)]


def ask_first(
    request: Request, user: User, *, question: str, action: str, button: str, back: str
) -> HTMLResponse:
    """The confirmation page of a destructive form sent without its ``confirmed=yes``
    (a browser without JavaScript): the question, the button that does it, a way back."""
    return render(
        request, "confirm.html", user, question=question, action=action, button=button, back=back
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
    "Confirmed",
    "CsrfChecked",
    "MaybeUser",
    "PageUser",
    "ask_first",
    "field_errors",
    "flash",
    "install_redirects",
    "iso_utc",
    "num",
    "redirect",
    "render",
    "templates",
    "utc",
]


def field_errors(exc: Exception, default_field: str) -> dict[str, str]:
    """Messages by form field, from a wowlab error or a pydantic validation error."""
    from pydantic import ValidationError

    from wowlab_core.errors import WowlabError

    if isinstance(exc, ValidationError):
        errors: dict[str, str] = {}
        for e in exc.errors():
            field = str(e["loc"][0]) if e["loc"] else default_field
            message = str(e["msg"]).removeprefix("Value error, ")
            errors[field] = f"{errors[field]}; {message}" if field in errors else message
        return errors
    if isinstance(exc, WowlabError):
        return {(exc.field or default_field).split(".")[0]: exc.message}
    raise exc
