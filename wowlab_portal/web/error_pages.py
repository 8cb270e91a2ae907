"""Error answers for browsers: a page in the portal's layout, not the API's JSON.

A request that asks for HTML (a browser navigating: ``Accept: text/html``) outside the API
gets a page that says what happened in plain words and offers a way back. Everyone else
(the API under ``/api/``, scripts, ``curl``, the node client) keeps the JSON error body of
:mod:`wowlab_portal.api.errors`: the handlers here wrap those and choose per request.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from wowlab_core.db import read_session
from wowlab_core.errors import WowlabError
from wowlab_core.models import User
from wowlab_portal.api.deps import session_login
from wowlab_portal.security_headers import HEADERS as SECURITY_HEADERS
from wowlab_portal.web.forms import FORM_EXPIRED, csrf_token, sentence, templates

log = logging.getLogger(__name__)

Handler = Callable[[Request, Exception], Awaitable[Response]]
#: An exception handler as Starlette keeps it (sync or async).
AnyHandler = Callable[[Request, Any], Response | Awaitable[Response]]


async def _answer(handler: AnyHandler, request: Request, exc: Exception) -> Response:
    answer = handler(request, exc)
    return await answer if inspect.isawaitable(answer) else answer


@dataclass(frozen=True)
class Explanation:
    """What a status code means to someone using the site."""

    title: str
    text: str


EXPLANATIONS = {
    400: Explanation(
        "That request could not be read",
        "The browser sent something the portal could not understand.",
    ),
    403: Explanation("Not allowed", "You may not do this here."),
    401: Explanation("Log in first", "This page is for logged-in users."),
    404: Explanation("Page not found", "There is no such page, or it is not yours to see."),
    405: Explanation("Not a page", "This address takes form posts, not visits."),
    409: Explanation("Something changed meanwhile", "Reload the page and try again."),
    410: Explanation("Gone", "This has expired."),
    413: Explanation("Too large", "What you sent is over the portal's size limit."),
    422: Explanation("That did not work", "Something in the request is not valid."),
    429: Explanation("Too many attempts", "Wait a minute, then try again."),
    500: Explanation(
        "Something went wrong on our side",
        "The portal failed on this request. It is logged; please try again in a moment.",
    ),
    503: Explanation(
        "The portal is not available",
        "Its database cannot be reached right now. Try again in a minute.",
    ),
}  # fmt: skip

#: A form sent without this session's token: logged out elsewhere, or an old tab.
EXPIRED_FORM = Explanation(
    "This form has expired",
    "You were logged out (perhaps in another tab), or the page was open from an earlier "
    "session. Nothing was changed: reload the page, or log in again, then send it again.",
)

#: Where each part of the site leads back to: (path prefix, link text).
AREAS = (
    ("/nodes/available", "Available nodes"),
    ("/nodes", "My nodes"),
    ("/jobs", "Jobs"),
    ("/guilds", "Guilds"),
    ("/friends", "Friends"),
    ("/account", "Account"),
)


#: Machine endpoints: always the JSON error body, whoever asks.
MACHINE_PATHS = ("/api/", "/healthz", "/metrics", "/openapi.json", "/docs")


def wants_html(request: Request) -> bool:
    """Whether this request is a browser's page visit rather than an API or script call."""
    if request.url.path.startswith(MACHINE_PATHS):
        return False
    return "text/html" in request.headers.get("accept", "")


def area_of(path: str) -> tuple[str, str] | None:
    """The part of the site ``path`` is in, as (its page, its name), if any."""
    for prefix, name in AREAS:
        if path == prefix or path.startswith(prefix + "/"):
            return prefix, name
    return None


def _logged_in_user(request: Request) -> User | None:
    """The user of the request's session, for the page's navigation (never raises)."""
    if "session" not in request.scope or not hasattr(request.app.state, "db"):
        return None
    try:
        with read_session(request.app.state.db) as session:
            user = session_login(request, session)
            if user is not None:
                session.expunge(user)
            return user
    except Exception:  # the error page must render even with the database away
        log.debug("error page: could not look up the user", exc_info=True)
        return None


def error_page(
    request: Request,
    status_code: int,
    detail: str | None = None,
    *,
    look_up_user: bool = True,
    headers: dict[str, str] | None = None,
    explanation: Explanation | None = None,
) -> HTMLResponse:
    """The HTML page of an error ``status_code``, with ``detail`` when it helps."""
    explanation = (
        explanation
        or EXPLANATIONS.get(status_code)
        or EXPLANATIONS[500 if status_code >= 500 else 400]
    )
    user = _logged_in_user(request) if look_up_user else None
    csrf = csrf_token(request) if user is not None else ""  # for the header's Log out
    path = request.url.path
    # After logging in, back to this page if it exists and can be visited, else its area.
    revisit = request.method == "GET" and status_code not in (404, 405)
    login_next = path if revisit else (area_of(path) or ("/nodes", ""))[0]
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "user": user,
            "csrf_token": csrf,
            "flash": None,
            "status_code": status_code,
            "title": explanation.title,
            "text": explanation.text,
            "detail": detail if detail and detail != explanation.text else None,
            "area": area_of(path),
            "login_url": f"/login?next={quote(login_next, safe='/')}",
        },
        status_code=status_code,
        headers=headers,
    )


def _html_wowlab_error(exc: Exception) -> tuple[int, str | None]:
    assert isinstance(exc, WowlabError)
    # A 404's message names the thing ("job 7 not found"); the page says it in general words.
    return exc.status_code, None if exc.status_code == 404 else sentence(exc.message)


def _html_validation_error(exc: Exception) -> tuple[int, str | None]:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    # /nodes/abc, /jobs/99999999999: an address that cannot name anything is no page at all.
    if errors and all(tuple(e.get("loc", ()))[:1] == ("path",) for e in errors):
        return 404, None
    return 422, "The form was sent incomplete. Go back, fill in every field and send it again."


def _html_http_error(exc: Exception) -> tuple[int, str | None]:
    assert isinstance(exc, StarletteHTTPException)
    return exc.status_code, None


def install_error_pages(app: FastAPI) -> None:
    """Answer browsers' errors with pages; call after the API's error handlers are installed."""
    describers: dict[type[Exception], Callable[[Exception], tuple[int, str | None]]] = {
        WowlabError: _html_wowlab_error,
        RequestValidationError: _html_validation_error,
        StarletteHTTPException: _html_http_error,
    }
    for kind, describe in describers.items():
        app.add_exception_handler(kind, _choosing(app.exception_handlers[kind], describe))
    json_database = app.exception_handlers[sa_exc.OperationalError]
    json_internal = app.exception_handlers[Exception]

    async def database_unavailable(request: Request, exc: Exception) -> Response:
        answer = await _answer(json_database, request, exc)
        if not wants_html(request):
            return answer
        return error_page(request, 503, look_up_user=False)

    async def internal_error(request: Request, exc: Exception) -> Response:
        answer = await _answer(json_internal, request, exc)
        if not wants_html(request):
            return answer
        # Answered outside the other middleware: the security headers come from here.
        return error_page(request, 500, look_up_user=False, headers=SECURITY_HEADERS)

    app.add_exception_handler(sa_exc.OperationalError, database_unavailable)
    app.add_exception_handler(Exception, internal_error)


def _choosing(
    json_handler: AnyHandler, describe: Callable[[Exception], tuple[int, str | None]]
) -> Handler:
    async def handler(request: Request, exc: Exception) -> Response:
        answer = await _answer(json_handler, request, exc)
        if not wants_html(request):
            return answer
        status_code, detail = describe(exc)
        keep = {k: v for k, v in answer.headers.items() if k.lower() in ("retry-after", "allow")}
        expired = isinstance(exc, WowlabError) and exc.message == FORM_EXPIRED
        return error_page(
            request,
            status_code,
            None if expired else detail,
            headers=keep,
            explanation=EXPIRED_FORM if expired else None,
        )

    return handler


__all__ = ["error_page", "install_error_pages", "wants_html"]
