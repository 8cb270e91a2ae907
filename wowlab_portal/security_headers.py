"""Security headers on every answer of the portal: a Content-Security-Policy without
``'unsafe-inline'``, no framing, no MIME sniffing, no referrer to other sites.

The pages run no inline script and carry no ``style=`` attribute: their JavaScript and CSS
are static files (``/static/``) that read what they need from ``data-*`` attributes, so a
name a user typed can never become code. The OpenAPI page ``/docs`` is the one exception:
it loads Swagger UI from its CDN and starts it with one inline script, allowed by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The policy of every answer but ``/docs``.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
#: Where FastAPI's Swagger UI page loads its script and style from.
SWAGGER_CDN = "https://cdn.jsdelivr.net"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


class SecurityHeaders:
    """ASGI middleware: add :data:`HEADERS` to every HTTP answer (a header the answer set
    itself, such as the CSP of ``/docs``, is kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def docs_policy(html: str) -> str:
    """The CSP of a Swagger UI page: its CDN, and its inline scripts by sha256."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {SWAGGER_CDN} {hashes}; "
        f"style-src 'self' {SWAGGER_CDN}; img-src 'self' data: https://fastapi.tiangolo.com; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) with a policy that allows exactly its own scripts.

    The app is made with ``docs_url=None`` and ``redoc_url=None``: ReDoc needs inline
    styles, so it is not served; ``/openapi.json`` is.
    """

    async def swagger_ui(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} · API")
        html = bytes(page.body).decode()
        return HTMLResponse(html, headers={"Content-Security-Policy": docs_policy(html)})

    # A plain route, like FastAPI's own /docs (not part of the API, not a page).
    app.add_route("/docs", swagger_ui, include_in_schema=False)


__all__ = ["CONTENT_SECURITY_POLICY", "HEADERS", "SecurityHeaders", "install_docs"]
