"""The ``supabase`` node transport: the node functions called through PostgREST RPC with
supabase-py, and Realtime wake-ups as a hint.

``wowlab node run --transport supabase --url https://PROJECT.supabase.co --key ANON_KEY``
(or ``WOWLAB_SUPABASE_URL`` / ``WOWLAB_SUPABASE_KEY``). Every call is one RPC and one
database transaction; the SQL checks the node's token. Polling is the truth: a claim is
seen within ``CLAIM_POLL_MAX`` seconds without Realtime, and at once with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any

import anyio
import httpx

from wowlab_core.errors import (
    AuthenticationFailed,
    InvalidRequest,
    LeaseLost,
    NotFound,
    RateLimited,
    RequestTooLarge,
    ResultInvalid,
    TransportError,
    WowlabError,
)
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
from wowlab_transport_supabase.wake import (
    WAKEUPS_TABLE,
    WakeSignals,
    subscription_filter,
    wait_for,
    wake_topic,
)

log = logging.getLogger(__name__)

#: Claim-status polling: first after this many seconds, growing to at most CLAIM_POLL_MAX.
CLAIM_POLL_FIRST = 0.5
CLAIM_POLL_MAX = 2.5
#: How long an RPC may take before the node treats the project as unreachable.
RPC_TIMEOUT = 30.0
#: A failed Realtime connection is tried again after this long.
REALTIME_RETRY_SECONDS = 60.0

_ERRORS: dict[str, type[WowlabError]] = {
    cls.__name__: cls
    for cls in (
        AuthenticationFailed,
        InvalidRequest,
        LeaseLost,
        NotFound,
        RateLimited,
        RequestTooLarge,
        ResultInvalid,
    )
}


def error_from_api(code: str | None, message: str | None, details: Any) -> WowlabError:
    """The wowlab error of a PostgREST error body."""
    text = message or code or "unknown error"
    cls = _ERRORS.get(code or "")
    if cls is not None:
        return cls(text, field=details if isinstance(details, str) else None)
    if code and (code.startswith("PGRST3") or code in ("42501",)):
        return TransportError(f"the project refused the API key: {text}")
    if code and code[:2] in ("08", "53", "57", "XX"):
        return TransportError(f"database unavailable: {text}")
    if code == "PGRST202":
        return TransportError(f"{text} (has `wowlab supabase apply` been run on this project?)")
    return InvalidRequest(text)


class SupabaseTransport:
    """A node's connection to a Supabase project."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        realtime: bool = True,
        timeout: float = RPC_TIMEOUT,
        schema: str = "public",
        realtime_url: str | None = None,
    ) -> None:
        if not url or not key:
            raise InvalidRequest(
                "the supabase transport needs --url https://PROJECT.supabase.co and --key "
                "ANON_KEY (or WOWLAB_SUPABASE_URL and WOWLAB_SUPABASE_KEY)",
                field="url" if not url else "key",
            )
        self.url = url.rstrip("/")
        self.key = key
        self.realtime_enabled = realtime
        self.timeout = timeout
        self.schema = schema
        #: Realtime at another address than ``{url}/realtime/v1`` (self-hosting, tests).
        self.realtime_url = realtime_url
        self.rpc_calls = 0
        self._client: Any = None
        self._http: Any = None
        self._signals: WakeSignals | None = None
        self._channel: Any = None
        self._realtime_failed_at: float | None = None
        self._realtime_task: asyncio.Task[None] | None = None
        self._own_topic: str | None = None

    # --- plumbing -------------------------------------------------------------------

    async def _get_client(self) -> Any:
        if self._client is None:
            from supabase import AsyncClientOptions, acreate_client

            # supabase-py takes the timeout from the HTTP client it is given.
            self._http = httpx.AsyncClient(timeout=self.timeout)
            try:
                self._client = await acreate_client(
                    self.url,
                    self.key,
                    options=AsyncClientOptions(httpx_client=self._http, schema=self.schema),
                )
            except Exception as exc:  # supabase-py checks the URL and the key's form
                raise InvalidRequest(f"supabase: {exc}", field="url") from None
            if self.realtime_url:
                from realtime import AsyncRealtimeClient

                self._client.realtime = AsyncRealtimeClient(self.realtime_url, token=self.key)
        return self._client

    async def _rpc(self, function: str, params: dict[str, Any]) -> Any:
        from postgrest.exceptions import APIError

        client = await self._get_client()
        self.rpc_calls += 1
        try:
            response = await client.rpc(function, params).execute()
        except APIError as exc:
            raise error_from_api(exc.code, exc.message, exc.details) from None
        except (httpx.HTTPError, OSError) as exc:
            raise TransportError(f"cannot reach {self.url}: {exc}") from None
        return response.data

    def _signals_for(self, creds: NodeCredentials | None) -> WakeSignals:
        if self._signals is None:
            self._signals = WakeSignals()
        if creds is not None and self._own_topic is None:
            self._own_topic = wake_topic(creds.token)
            self._signals.own_topic = self._own_topic
        return self._signals

    async def _ensure_realtime(self, creds: NodeCredentials) -> None:
        """Subscribe to the wake-ups in the background, once (and again a while after a
        failure); the caller never waits for Realtime."""
        signals = self._signals_for(creds)
        if not self.realtime_enabled or self._channel is not None:
            return
        if self._realtime_task is not None and not self._realtime_task.done():
            return
        now = anyio.current_time()
        if (
            self._realtime_failed_at is not None
            and now - self._realtime_failed_at < REALTIME_RETRY_SECONDS
        ):
            return
        client = await self._get_client()
        self._realtime_task = asyncio.get_running_loop().create_task(
            self._subscribe(client, signals)
        )

    async def _subscribe(self, client: Any, signals: WakeSignals) -> None:
        try:
            channel = client.channel("wowlab-wakeups")
            channel.on_postgres_changes(
                "INSERT",
                signals.handle_change,
                table=WAKEUPS_TABLE,
                schema="public",
                filter=subscription_filter(self._own_topic),
            )
            with anyio.fail_after(30):
                await channel.subscribe()
            self._channel = channel
        except Exception as exc:  # Realtime is a hint: polling goes on without it
            self._realtime_failed_at = anyio.current_time()
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("Realtime unavailable (%s); polling only", reason)

    # --- the node-facing calls --------------------------------------------------------

    async def register(self, info: NodeInfo) -> Registration:
        """Register a new node."""
        data = await self._rpc("node_register", {"p_info": info.to_dict()})
        return Registration.from_dict(data)

    async def claim_status(self, creds: NodeCredentials, *, wait: float = 0.0) -> ClaimStatus:
        """Claim status; with ``wait``, poll (backing off up to CLAIM_POLL_MAX s) until
        claimed, waking at once on a Realtime claim hint."""
        params = {"p_node_id": creds.node_id, "p_token": creds.token}
        status = ClaimStatus.from_dict(await self._rpc("node_claim_status", params))
        if status.claimed or wait <= 0:
            return status
        await self._ensure_realtime(creds)
        signals = self._signals_for(creds)
        deadline = anyio.current_time() + wait
        interval = CLAIM_POLL_FIRST
        while not status.claimed:
            left = deadline - anyio.current_time()
            if left <= 0:
                break
            await wait_for(lambda: signals.claim, min(interval, left))
            signals.take_claim()
            interval = min(interval * 1.5, CLAIM_POLL_MAX)
            status = ClaimStatus.from_dict(await self._rpc("node_claim_status", params))
        return status

    async def heartbeat(
        self, creds: NodeCredentials, beat: Heartbeat | None = None
    ) -> HeartbeatReply:
        """Heartbeat (no ``beat``: the node runs nothing)."""
        beat = beat if beat is not None else Heartbeat()
        data = await self._rpc(
            "node_heartbeat",
            {"p_node_id": creds.node_id, "p_token": creds.token, "p_beat": beat.to_dict()},
        )
        return HeartbeatReply.from_dict(data)

    async def lease(self, creds: NodeCredentials, max_chunks: int) -> list[Lease]:
        """Lease chunks."""
        data = await self._rpc(
            "node_lease",
            {"p_node_id": creds.node_id, "p_token": creds.token, "p_max_chunks": max_chunks},
        )
        return [Lease.from_dict(item) for item in data or []]

    async def get_config(self, creds: NodeCredentials, config_hash: str) -> ConfigPayload:
        """Fetch a config by hash."""
        data = await self._rpc(
            "node_get_config",
            {"p_node_id": creds.node_id, "p_token": creds.token, "p_config_hash": config_hash},
        )
        return ConfigPayload.from_dict(data)

    async def complete(
        self, creds: NodeCredentials, completions: Sequence[Completion]
    ) -> list[CompletionOutcome]:
        """Report results (idempotent)."""
        data = await self._rpc(
            "node_complete",
            {
                "p_node_id": creds.node_id,
                "p_token": creds.token,
                "p_completions": [c.to_dict() for c in completions],
            },
        )
        return [CompletionOutcome.from_dict(item) for item in data or []]

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
        params: dict[str, Any] = {
            "p_node_id": creds.node_id,
            "p_token": creds.token,
            "p_chunk_id": chunk_id,
            "p_lease_token": lease_token,
            "p_error": error,
        }
        if reason is not None:
            params["p_reason"] = reason
        await self._rpc("node_fail", params)

    async def release(
        self, creds: NodeCredentials, chunk_ids: Sequence[int], lease_token: str
    ) -> int:
        """Hand leased chunks back unfinished."""
        data = await self._rpc(
            "node_release",
            {
                "p_node_id": creds.node_id,
                "p_token": creds.token,
                "p_chunk_ids": list(chunk_ids),
                "p_lease_token": lease_token,
            },
        )
        return int(data or 0)

    async def go_offline(self, creds: NodeCredentials) -> None:
        """Say goodbye."""
        await self._rpc("node_go_offline", {"p_node_id": creds.node_id, "p_token": creds.token})

    async def wait_for_work(self, creds: NodeCredentials, timeout: float) -> None:
        """Return on a Realtime work hint, or after ``timeout`` (then the node polls). The
        token is checked first (``node_touch``): a wrong one fails at once."""
        await self._rpc("node_touch", {"p_node_id": creds.node_id, "p_token": creds.token})
        await self._ensure_realtime(creds)
        signals = self._signals_for(creds)
        await wait_for(lambda: signals.work, timeout)
        signals.take_work()

    async def aclose(self) -> None:
        """Leave the Realtime channel and close the HTTP client."""
        client, self._client = self._client, None
        if client is None:
            return
        if self._realtime_task is not None and not self._realtime_task.done():
            self._realtime_task.cancel()
            with anyio.move_on_after(2):
                await asyncio.gather(self._realtime_task, return_exceptions=True)
        if self._channel is not None:
            with anyio.move_on_after(2):
                await client.remove_channel(self._channel)
            self._channel = None
        with anyio.move_on_after(2):
            await client.realtime.close()
        postgrest = getattr(client, "_postgrest", None)
        if postgrest is not None:
            with anyio.move_on_after(2):
                await postgrest.aclose()
        if self._http is not None:
            with anyio.move_on_after(2):
                await self._http.aclose()
            self._http = None


def supabase_transport(url: str = "", **options: Any) -> SupabaseTransport:
    """Factory: ``url`` (or WOWLAB_SUPABASE_URL) and ``key=`` (or WOWLAB_SUPABASE_KEY)."""
    url = url or os.environ.get("WOWLAB_SUPABASE_URL", "")
    key = options.pop("key", None) or os.environ.get("WOWLAB_SUPABASE_KEY", "")
    return SupabaseTransport(url, key, **options)


__all__ = ["SupabaseTransport", "error_from_api", "supabase_transport"]
