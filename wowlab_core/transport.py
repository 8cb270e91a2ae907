"""The node transport contract: how a node reaches the coordinator.

A transport is async and stateless apart from its connection: every call carries the
node's credentials. Implementations: ``local`` (in-process, this package), ``http``
(portal), ``mqtt``, ``supabase``. Each must pass the conformance suite in
:mod:`wowlab_core.testing.conformance`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from wowlab_core.protocol import (
    ClaimStatus,
    Completion,
    CompletionOutcome,
    ConfigPayload,
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

    async def heartbeat(self, creds: NodeCredentials) -> HeartbeatReply:
        """Say the node is alive; extends its leases."""
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
        self, creds: NodeCredentials, chunk_id: int, lease_token: str, error: str
    ) -> None:
        """Report that a chunk failed on this node."""
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


__all__ = ["NodeTransport", "TransportFactory"]
