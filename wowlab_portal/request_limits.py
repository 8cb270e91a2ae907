"""Limits on what a request body may cost the portal, applied before anything parses it.

- :class:`BodyLimit`: a body over the limit (1 MiB; 4 MiB where a config is submitted) is
  answered 413 without being read: at once when ``Content-Length`` says so, else as soon
  as the bytes received (a chunked body) pass the limit. The rest is never buffered.
- :class:`JsonDepthLimit`: a JSON body nested deeper than :data:`MAX_JSON_DEPTH` is
  answered 422 before it is parsed (Python's parser and everything after it recurse).
"""

from __future__ import annotations

import email.message
import re
from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wowlab_core.errors import InvalidRequest, RequestTooLarge

MiB = 1024 * 1024
#: Deeper JSON than any config or result needs (the engine's configs nest about 6 deep).
MAX_JSON_DEPTH = 64
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_too_deep(text: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON ``text`` nests arrays and objects more than ``max_depth`` deep.

    Runs in C-speed passes (no recursion, no parse): strings are dropped, only brackets
    kept, and innermost pairs removed ``max_depth`` times. Unbalanced brackets are left
    to the parser to report, unless there are more of them than ``max_depth``.
    """
    data = text.encode() if isinstance(text, str) else text
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    for _ in range(max_depth):
        if not brackets:
            return False
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(brackets):  # mismatched: not JSON at all
            return len(brackets) > max_depth
        brackets = shorter
    return bool(brackets)


def check_json_depth(text: bytes | str, *, field: str = "body") -> None:
    """Raise :class:`InvalidRequest` naming ``field`` if ``text`` nests too deeply."""
    if json_too_deep(text):
        raise InvalidRequest(
            f"{field}: JSON nested more than {MAX_JSON_DEPTH} levels deep", field=field
        )


def _error(exc: InvalidRequest | RequestTooLarge) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status_code)


class BodyLimit:
    """ASGI middleware: refuse a request body over its limit before it is read.

    ``larger`` gives some routes, by ``(method, path)``, a limit of their own.
    """

    def __init__(
        self, app: ASGIApp, *, limit: int, larger: Mapping[tuple[str, str], int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.larger = dict(larger or {})

    def limit_for(self, scope: Scope) -> int:
        """The body limit of this request's route."""
        return self.larger.get((scope["method"], scope["path"].rstrip("/")), self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        refusal = _error(
            RequestTooLarge(f"the request body is over the limit of {limit} bytes", field="body")
        )
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await refusal(scope, receive, send)  # not a byte of the body is read
            return
        received = 0
        refused = started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # A chunked body passed the limit: answer now, and tell the app the
                    # client is gone so it stops reading.
                    refused = True
                    if not started:
                        await refusal(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise  # the app's own error; after a refusal, only the cut-off read failed


def _is_json(headers: Headers) -> bool:
    # The same test FastAPI uses to decide that it parses the body as JSON.
    content_type = headers.get("content-type")
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class JsonDepthLimit:
    """ASGI middleware: refuse a JSON body nested deeper than :data:`MAX_JSON_DEPTH`.

    The body is read (:class:`BodyLimit` has bounded it), checked, and handed on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in _BODYLESS
            or not _is_json(Headers(scope=scope))
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_too_deep(body):
            exc = InvalidRequest(
                f"the body is JSON nested more than {MAX_JSON_DEPTH} levels deep", field="body"
            )
            await _error(exc)(scope, receive, send)
            return
        whole: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([whole], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``messages`` first, then the real ``receive`` (a later disconnect)."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


__all__ = [
    "MAX_JSON_DEPTH",
    "BodyLimit",
    "JsonDepthLimit",
    "MiB",
    "check_json_depth",
    "json_too_deep",
]
