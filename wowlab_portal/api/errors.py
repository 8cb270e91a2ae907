"""Every error answer of the API has one shape: ``{"error", "detail", "field"}``.

``error`` is the name of a :mod:`wowlab_core.errors` type (the HTTP node client raises
that type again), ``detail`` a sentence a user can act on, ``field`` the request field it
is about (or null).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from wowlab_core.errors import AuthenticationFailed, WowlabError
from wowlab_portal.security_headers import HEADERS as SECURITY_HEADERS

log = logging.getLogger(__name__)

# Status codes of Starlette's own errors (unparsable body, unknown route, wrong method) by
# wowlab name.
_HTTP_ERROR_NAMES = {
    400: "InvalidRequest",
    401: "AuthenticationFailed",
    403: "PermissionDenied",
    404: "NotFound",
    413: "RequestTooLarge",
}
_LOCATIONS = ("body", "query", "path", "header", "cookie")


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: str
    detail: str
    field: str | None


_MEANINGS = {
    400: "The body cannot be parsed (not UTF-8 JSON).",
    401: "Not authenticated: no or wrong credentials.",
    403: "Not allowed (or a cookie request without its CSRF token).",
    404: "No such thing, or not yours to see.",
    409: "The lease was lost (expired, or the chunk went to another node).",
    410: "The claim code has expired.",
    413: "The body is over the portal's size limit (refused before it was read).",
    422: "The request is not valid; `field` names the first bad field.",
    429: "Too many attempts; wait a minute.",
    503: "The portal's database is not available; try again soon.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of these error status codes (always with 400, 422 and 503)."""
    return {
        code: {"model": ErrorBody, "description": _MEANINGS[code]}
        for code in sorted({*codes, 400, 422, 503})
    }


#: The errors any user route may answer.
USER_ERRORS = error_responses(401, 403, 404, 409, 410, 413, 429)
#: The errors any node route may answer.
NODE_ERRORS = error_responses(401, 403, 404, 409, 413, 429)


def error_body(error: str, detail: str, field: str | None = None) -> dict[str, str | None]:
    """The JSON body of an error answer."""
    return {"error": error, "detail": detail, "field": field}


def _field_of(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    """(field, message) of one pydantic validation error."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        position = f" at character {loc[1]}" if len(loc) > 1 else ""
        return "body", f"the body is not valid JSON{position}" + (f": {reason}" if reason else "")
    field = _field_of(loc)
    message = str(error.get("msg", "is not valid"))
    if error.get("type") == "missing":
        return field, f"{field} is required"
    return field, f"{field}: {message}"


async def wowlab_error(request: Request, exc: Exception) -> JSONResponse:
    """A wowlab error: its own status code and body."""
    assert isinstance(exc, WowlabError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationFailed) else None
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A request that does not fit the API: 422, naming the first bad field."""
    assert isinstance(exc, RequestValidationError)
    described = [_describe(e) for e in exc.errors()] or [("body", "the request is not valid")]
    field = described[0][0]
    detail = "; ".join(message for _, message in described[:5])
    return JSONResponse(error_body("InvalidRequest", detail, field), status_code=422)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's errors (unknown route, method not allowed) in the same shape."""
    assert isinstance(exc, StarletteHTTPException)
    name = _HTTP_ERROR_NAMES.get(exc.status_code, "HTTPError")
    return JSONResponse(
        error_body(name, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database cannot be used (down, locked too long): 503, which nodes retry."""
    log.error("database error on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        error_body("TransportError", "the portal's database is not available; try again soon"),
        status_code=503,
    )


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: 500 in the same shape (the traceback goes to the server's log)."""
    # This handler answers outside the other middleware: it adds the security headers.
    return JSONResponse(
        error_body("InternalError", "the portal failed on this request; see its log"),
        status_code=500,
        headers=SECURITY_HEADERS,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Give every error answer of ``app`` the wowlab shape."""
    app.add_exception_handler(Exception, internal_error)
    app.add_exception_handler(WowlabError, wowlab_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(sa_exc.OperationalError, database_unavailable)


__all__ = [
    "NODE_ERRORS",
    "USER_ERRORS",
    "ErrorBody",
    "error_body",
    "error_responses",
    "install_error_handlers",
]
