"""The node transport contract: how a node reaches the coordinator.

A transport is async and stateless apart from its connection: every call carries the
node's credentials. Implementations: ``local`` (:mod:`wowlab_core.transport_local`: a
coordinator in the node's process, on a database URL), ``http``
(:mod:`wowlab_core.http_client`, served by the portal) and ``mqtt``
(``wowlab_transport_mqtt``, through a broker and the bridge the portal runs with
``wowlab_portal_services``). A plugin adds one with ``wowlab_register_transports``; each must
pass the conformance suite in :mod:`wowlab_core.testing.conformance`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from anyio.abc import TaskStatus

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


@runtime_checkable
class NodeTransport(Protocol):
    """What a node can ask of the coordinator, over some wire.

    Errors are the types of :mod:`wowlab_core.errors` (``AuthenticationFailed`` for a bad
    token, ``LeaseLost``, ``NotFound`` ...); a transport turns its wire's errors back into
    them, and raises ``TransportError`` when the coordinator cannot be reached.
    """

    async def register(self, info: NodeInfo) -> Registration:
        """Register a new node."""
        ...

    async def claim_status(self, creds: NodeCredentials, *, wait: float = 0.0) -> ClaimStatus:
        """Whether the node is claimed. With ``wait`` > 0, answer as soon as it is claimed,
        or after ``wait`` seconds at most (a long poll)."""
        ...

    async def heartbeat(self, creds: NodeCredentials, beat: Heartbeat) -> HeartbeatReply:
        """Say the node is alive and name the chunks it runs: their leases are extended,
        every other lease of the node is handed back. Never sent while a lease call of
        the same node is unanswered."""
        ...

    async def lease(self, creds: NodeCredentials, max_chunks: int) -> list[Lease]:
        """Lease up to ``max_chunks`` chunks."""
        ...

    async def get_config(self, creds: NodeCredentials, config_hash: str) -> ConfigPayload:
        """Fetch a config by hash."""
        ...

    async def complete(
        self, creds: NodeCredentials, completions: Sequence[Completion]
    ) -> list[CompletionOutcome]:
        """Report results (idempotent)."""
        ...

    async def fail(
        self,
        creds: NodeCredentials,
        chunk_id: int,
        lease_token: str,
        error: str,
        *,
        reason: str | None = None,
    ) -> None:
        """Report that a chunk failed on this node; ``reason`` is a
        :class:`~wowlab_core.protocol.FailReason` value (``over-budget`` is not the
        node's fault). A transport written before ``reason`` existed still works: the
        agent then reports an over-budget chunk as an error."""
        ...

    async def release(
        self, creds: NodeCredentials, chunk_ids: Sequence[int], lease_token: str
    ) -> int:
        """Hand leased chunks back unfinished."""
        ...

    async def go_offline(self, creds: NodeCredentials) -> None:
        """Say goodbye before a clean shutdown."""
        ...

    async def wait_for_work(self, creds: NodeCredentials, timeout: float) -> None:
        """Return when work may be available (a push where the wire can), or after ``timeout``."""
        ...

    async def aclose(self) -> None:
        """Close connections."""
        ...


class TransportFactory(Protocol):
    """Makes a transport: ``factory(url, **options)``."""

    def __call__(self, url: str, **options: Any) -> NodeTransport: ...


class PortalService(Protocol):
    """A transport's server side run inside the portal (``wowlab_portal_services``).

    The portal starts it with ``await task_group.start(service)``: it calls
    ``task_status.started()`` once it serves, then runs until cancelled.
    """

    async def __call__(self, *, task_status: TaskStatus[Any]) -> None: ...


__all__ = ["NodeTransport", "PortalService", "TransportFactory"]
