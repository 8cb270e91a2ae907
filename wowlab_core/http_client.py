"""The ``http`` transport: a node talking to a wowlab portal over HTTP(S).

The portal serves the node endpoints under ``/api/v1/node/``. Every call except
``register`` carries the node's credentials in two headers::

    Authorization: Bearer <token>
    X-Wowlab-Node: <node id>

Bodies are the JSON forms of :mod:`wowlab_core.protocol` messages. An error comes back as
``{"error": <type name>, "detail": ..., "field": ...}`` with the status code of that type,
and is raised here as the :mod:`wowlab_core.errors` type of that name (by status code
when the name is unknown); a portal that cannot be reached, or answers 5xx, raises
:class:`~wowlab_core.errors.TransportError`.

Retries (with exponential backoff): a request that never reached the portal (connection
refused, connect timeout) is retried for every call; a lost answer or a 5xx only for the
calls that are safe to repeat (claim status, heartbeat, config, complete -- idempotent by
design --, release, offline, wait for work). ``register``, ``lease`` and ``fail`` are not
repeated after they may have reached the portal: a second node, chunks leased twice or a
failure counted twice would be worse than an error the agent retries on its own terms.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import anyio
import httpx

from wowlab_core import __version__, errors
from wowlab_core.errors import InvalidRequest, TransportError, WowlabError
from wowlab_core.hookspecs import hookimpl
from wowlab_core.protocol import (
    ClaimStatus,
    Completion,
    CompletionOutcome,
    ConfigPayload,
    Heartbeat,
    HeartbeatReply,
    Lease,
    NodeCredentials,
    NodeInfo,
    Registration,
)
from wowlab_core.transport import TransportFactory

log = logging.getLogger(__name__)

#: Where the node endpoints live on a portal.
API_PREFIX = "/api/v1/node"
#: The header that names the calling node (its token goes in ``Authorization: Bearer``).
NODE_HEADER = "X-Wowlab-Node"
USER_AGENT = f"wowlab-node/{__version__}"
#: The longest long poll the client asks for; the portal may answer sooner.
MAX_LONG_POLL_SECONDS = 30.0

# A known error type by the name the portal sends; by status code otherwise.
_ERRORS_BY_NAME: dict[str, type[WowlabError]] = {
    name: cls
    for name in errors.__all__
    if isinstance(cls := getattr(errors, name), type) and issubclass(cls, WowlabError)
}
_ERRORS_BY_STATUS: dict[int, type[WowlabError]] = {
    401: errors.AuthenticationFailed,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.LeaseLost,
    410: errors.ClaimCodeExpired,
    422: errors.InvalidRequest,
    429: errors.RateLimited,
}
# Errors where the request did not reach the portal: safe to send again, whatever it was.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class HttpOptions:
    """Timeouts and retries of the HTTP transport."""

    #: Seconds to connect, and to wait for an ordinary answer.
    timeout: float = 15.0
    #: Extra tries after the first, for the calls that may be repeated.
    retries: int = 3
    #: The first pause between tries; doubled each time, up to ``max_backoff_seconds``.
    backoff_seconds: float = 0.25
    max_backoff_seconds: float = 4.0
    #: How much longer than a long poll's wait the client waits for its answer.
    long_poll_margin_seconds: float = 10.0


def error_from_response(response: httpx.Response) -> WowlabError:
    """The wowlab error an error response stands for."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "error" not in body:
        # Not a wowlab answer: a proxy, or a URL that is not a portal.
        text = response.reason_phrase or "error"
        message = f"{response.request.url}: HTTP {status} {text} (is this a wowlab portal?)"
        if status >= 500:
            return TransportError(message)
        return _ERRORS_BY_STATUS.get(status, WowlabError)(message)
    detail = str(body.get("detail") or response.reason_phrase or "error")
    field = body.get("field") if isinstance(body.get("field"), str) else None
    if status == 404 and detail == "Not Found":
        # The portal has no such route (its own not-found errors say what is missing).
        return errors.NotFound(
            f"no wowlab node API at {response.request.url}: give the portal's address "
            "without a path (such as http://host:8000)",
            field="url",
        )
    if status >= 500:
        return TransportError(f"the portal failed (HTTP {status}): {detail}", field=field)
    cls = _ERRORS_BY_NAME.get(str(body["error"])) or _ERRORS_BY_STATUS.get(status, WowlabError)
    return cls(detail, field=field)


class HttpTransport:
    """A :class:`~wowlab_core.transport.NodeTransport` over HTTP, with httpx."""

    def __init__(
        self,
        url: str,
        *,
        options: HttpOptions | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = _portal_url(url)
        self.options = options or HttpOptions()
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(self.options.timeout),
            # Below uvicorn's 5 s keep-alive: reusing a connection the portal is closing
            # would lose the request.
            limits=httpx.Limits(keepalive_expiry=4.0),
        )

    # --- plumbing -------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        creds: NodeCredentials | None = None,
        body: Any = None,
        params: dict[str, Any] | None = None,
        repeatable: bool,
        read_timeout: float | None = None,
    ) -> Any:
        headers = {"User-Agent": USER_AGENT} | (_auth_headers(creds) if creds else {})
        timeout = (
            httpx.Timeout(self.options.timeout, read=read_timeout)
            if read_timeout is not None
            else httpx.USE_CLIENT_DEFAULT
        )
        pause = self.options.backoff_seconds
        attempt = 0
        while True:
            try:
                response = await self._client.request(
                    method,
                    API_PREFIX + path,
                    json=body,
                    params=params,
                    headers=headers,
                    timeout=timeout,
                )
            except httpx.TransportError as exc:
                if attempt >= self.options.retries or not (
                    repeatable or isinstance(exc, _NOT_SENT)
                ):
                    reason = str(exc) or type(exc).__name__
                    raise TransportError(
                        f"cannot reach the portal at {self.url}: {reason}"
                    ) from exc
                log.debug("%s %s: %s; trying again", method, path, exc)
            else:
                if response.status_code < 400:
                    return _json(response)
                error = error_from_response(response)
                if not (
                    isinstance(error, TransportError)
                    and repeatable
                    and attempt < self.options.retries
                ):
                    raise error
                log.debug("%s %s: %s; trying again", method, path, error.message)
            attempt += 1
            await anyio.sleep(pause)
            pause = min(pause * 2, self.options.max_backoff_seconds)

    def _long_poll_timeout(self, wait: float) -> float:
        return wait + self.options.long_poll_margin_seconds

    # --- the transport --------------------------------------------------------------

    async def register(self, info: NodeInfo) -> Registration:
        """Register a new node (never repeated once it may have reached the portal)."""
        data = await self._request("POST", "/register", body=info.to_dict(), repeatable=False)
        return Registration.from_dict(data)

    async def claim_status(self, creds: NodeCredentials, *, wait: float = 0.0) -> ClaimStatus:
        """Claim status; with ``wait`` > 0 a long poll the portal answers on the claim."""
        wait = min(max(float(wait), 0.0), MAX_LONG_POLL_SECONDS)
        data = await self._request(
            "GET",
            "/claim-status",
            creds=creds,
            params={"wait": wait},
            repeatable=True,
            read_timeout=self._long_poll_timeout(wait),
        )
        return ClaimStatus.from_dict(data)

    async def heartbeat(self, creds: NodeCredentials, beat: Heartbeat) -> HeartbeatReply:
        """Heartbeat: name the running chunks (the others are handed back)."""
        data = await self._request(
            "POST", "/heartbeat", creds=creds, body=beat.to_dict(), repeatable=True
        )
        return HeartbeatReply.from_dict(data)

    async def lease(self, creds: NodeCredentials, max_chunks: int) -> list[Lease]:
        """Lease up to ``max_chunks`` chunks."""
        data = await self._request(
            "POST", "/lease", creds=creds, body={"max_chunks": max_chunks}, repeatable=False
        )
        return [Lease.from_dict(item) for item in _list_of(data, "leases")]

    async def get_config(self, creds: NodeCredentials, config_hash: str) -> ConfigPayload:
        """Fetch a config by hash."""
        data = await self._request(
            "GET", f"/config/{quote(config_hash, safe='')}", creds=creds, repeatable=True
        )
        return ConfigPayload.from_dict(data)

    async def complete(
        self, creds: NodeCredentials, completions: Sequence[Completion]
    ) -> list[CompletionOutcome]:
        """Report results (idempotent, so a lost answer is simply asked again)."""
        data = await self._request(
            "POST",
            "/complete",
            creds=creds,
            body={"completions": [c.to_dict() for c in completions]},
            repeatable=True,
        )
        return [CompletionOutcome.from_dict(item) for item in _list_of(data, "outcomes")]

    async def fail(
        self,
        creds: NodeCredentials,
        chunk_id: int,
        lease_token: str,
        error: str,
        *,
        reason: str | None = None,
    ) -> None:
        """Report that a chunk failed on this node."""
        body: dict[str, Any] = {"chunk_id": chunk_id, "lease_token": lease_token, "error": error}
        if reason is not None:
            body["reason"] = reason
        await self._request("POST", "/fail", creds=creds, body=body, repeatable=False)

    async def release(
        self, creds: NodeCredentials, chunk_ids: Sequence[int], lease_token: str
    ) -> int:
        """Hand leased chunks back unfinished."""
        data = await self._request(
            "POST",
            "/release",
            creds=creds,
            body={"chunk_ids": list(chunk_ids), "lease_token": lease_token},
            repeatable=True,
        )
        released = data.get("released") if isinstance(data, dict) else None
        if not isinstance(released, int):
            raise TransportError(f"the portal at {self.url} sent an unexpected answer")
        return released

    async def go_offline(self, creds: NodeCredentials) -> None:
        """Say goodbye before a clean shutdown."""
        await self._request("POST", "/offline", creds=creds, repeatable=True)

    async def wait_for_work(self, creds: NodeCredentials, timeout: float) -> None:
        """A long poll the portal answers when chunks may be available, or after ``timeout``.

        Raises only ``AuthenticationFailed`` (a wrong token): the wait is a hint, so when the
        portal cannot be asked it sleeps out the timeout and leaves other errors to the next
        real call.
        """
        timeout = min(max(float(timeout), 0.0), MAX_LONG_POLL_SECONDS)
        deadline = anyio.current_time() + timeout
        try:
            await self._request(
                "GET",
                "/wait-for-work",
                creds=creds,
                params={"timeout": timeout},
                repeatable=False,
                read_timeout=self._long_poll_timeout(timeout),
            )
        except errors.AuthenticationFailed:
            raise
        except WowlabError as exc:
            log.debug("wait for work: %s", exc.message)
            await anyio.sleep(max(deadline - anyio.current_time(), 0.0))

    async def aclose(self) -> None:
        """Close the connections (a client passed in belongs to its owner)."""
        if self._owns_client:
            await self._client.aclose()


def _portal_url(url: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest(
            f"the http transport needs the portal's URL, like http://portal-host:8000 "
            f"(got {url!r})",
            field="url",
        )
    return url.rstrip("/")


def _auth_headers(creds: NodeCredentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {creds.token}", NODE_HEADER: str(creds.node_id)}


def _json(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise TransportError(
            f"{response.request.url}: the answer is not JSON (is this a wowlab portal?)"
        ) from None


def _list_of(data: Any, key: str) -> list[Any]:
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise TransportError(f"the portal sent an answer without {key!r}")
    return items


def http_transport(url: str = "", **options: Any) -> HttpTransport:
    """Factory: ``url`` is the portal's base URL; ``options`` are :class:`HttpOptions`
    fields (``timeout``, ``retries``, ...) and ``client`` (an ``httpx.AsyncClient``)."""
    client = options.pop("client", None)
    try:
        http_options = HttpOptions(**options)
    except TypeError as exc:
        raise InvalidRequest(f"http transport: {exc}", field="options") from None
    return HttpTransport(url, options=http_options, client=client)


@hookimpl
def wowlab_register_transports(register: Any) -> None:
    """Register the ``http`` transport."""
    factory: TransportFactory = http_transport
    register("http", factory)


__all__ = [
    "API_PREFIX",
    "MAX_LONG_POLL_SECONDS",
    "NODE_HEADER",
    "HttpOptions",
    "HttpTransport",
    "error_from_response",
    "http_transport",
]
