"""The ``local`` transport: a node in the same process as the coordinator, or on the same
database.

``local`` with a database URL (``sqlite:///path`` or ``postgresql://...``) runs a
coordinator inside the node's process on that database; this is how ``wowlab sim`` runs its
nodes, and how a node on the database host can work without a portal. In-process nodes get
pushed wake-ups; nodes in other processes poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import anyio.to_thread
from sqlalchemy import exc as sa_exc

from wowlab_core.coordinator import Coordinator, CoordinatorSettings
from wowlab_core.db import create_db_engine, default_database_url, read_session
from wowlab_core.errors import TransportError
from wowlab_core.hookspecs import hookimpl
from wowlab_core.nodes import authenticate_node
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

CLAIM_POLL_SECONDS = 0.2


class LocalTransport:
    """Calls a :class:`Coordinator` directly, its blocking work in worker threads."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    async def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            # The database is this transport's wire: unreachable or failing is a
            # TransportError, which the agent retries like any other.
            reason = str(exc.orig or exc).strip().splitlines()[0] if str(exc) else "failed"
            raise TransportError(f"cannot use the database: {reason}") from exc

    async def register(self, info: NodeInfo) -> Registration:
        """Register a new node."""
        result: Registration = await self._call(self.coordinator.register, info)
        return result

    async def claim_status(self, creds: NodeCredentials, *, wait: float = 0.0) -> ClaimStatus:
        """Claim status, polling the database until claimed or ``wait`` has passed."""
        deadline = anyio.current_time() + max(wait, 0.0)
        while True:
            status: ClaimStatus = await self._call(self.coordinator.claim_status, creds)
            if status.claimed or anyio.current_time() >= deadline:
                return status
            await anyio.sleep(min(CLAIM_POLL_SECONDS, max(deadline - anyio.current_time(), 0)))

    async def heartbeat(self, creds: NodeCredentials, beat: Heartbeat) -> HeartbeatReply:
        """Heartbeat."""
        result: HeartbeatReply = await self._call(self.coordinator.heartbeat, creds, beat)
        return result

    async def lease(self, creds: NodeCredentials, max_chunks: int) -> list[Lease]:
        """Lease chunks."""
        result: list[Lease] = await self._call(self.coordinator.lease, creds, max_chunks)
        return result

    async def get_config(self, creds: NodeCredentials, config_hash: str) -> ConfigPayload:
        """Fetch a config."""
        result: ConfigPayload = await self._call(self.coordinator.get_config, creds, config_hash)
        return result

    async def complete(
        self, creds: NodeCredentials, completions: Sequence[Completion]
    ) -> list[CompletionOutcome]:
        """Report results."""
        result: list[CompletionOutcome] = await self._call(
            self.coordinator.complete, creds, list(completions)
        )
        return result

    async def fail(
        self,
        creds: NodeCredentials,
        chunk_id: int,
        lease_token: str,
        error: str,
        *,
        reason: str | None = None,
    ) -> None:
        """Report a failure."""
        await self._call(self.coordinator.fail, creds, chunk_id, lease_token, error, reason)

    async def release(
        self, creds: NodeCredentials, chunk_ids: Sequence[int], lease_token: str
    ) -> int:
        """Hand chunks back."""
        result: int = await self._call(
            self.coordinator.release, creds, list(chunk_ids), lease_token
        )
        return result

    async def go_offline(self, creds: NodeCredentials) -> None:
        """Say goodbye."""
        await self._call(self.coordinator.go_offline, creds)

    async def wait_for_work(self, creds: NodeCredentials, timeout: float) -> None:
        """Wait for the coordinator's in-process signal (submits, requeues) or the timeout."""
        since = self.coordinator.work.generation
        await self._call(self._authenticate, creds)
        await anyio.to_thread.run_sync(
            self.coordinator.wait_for_work, since, timeout, abandon_on_cancel=True
        )

    def _authenticate(self, creds: NodeCredentials) -> None:
        with read_session(self.coordinator.db) as session:
            authenticate_node(session, node_id=creds.node_id, token=creds.token)

    async def aclose(self) -> None:
        """The coordinator belongs to whoever made it; a job whose last result this node
        just sent is merged before the node's process may end (at most 10 s)."""
        await anyio.to_thread.run_sync(lambda: self.coordinator.settle(10.0))


def local_transport(url: str = "", **options: Any) -> LocalTransport:
    """Factory: ``coordinator=`` an existing coordinator, or a database URL to open one."""
    coordinator = options.pop("coordinator", None)
    if coordinator is None:
        from wowlab_core.migrate import ensure_schema
        from wowlab_core.plugins import get_hooks

        db_url = url if url and url not in ("local", "local://") else default_database_url()
        settings = options.pop("settings", None) or CoordinatorSettings.from_env()
        db = create_db_engine(db_url)
        # A node's own SQLite file migrates itself on first use; a shared server database
        # is migrated on purpose (the error names the command).
        ensure_schema(db, migrate=db.dialect.name == "sqlite")
        coordinator = Coordinator(db, hooks=get_hooks(), settings=settings)
    return LocalTransport(coordinator)


@hookimpl
def wowlab_register_transports(register: Any) -> None:
    """Register the ``local`` transport."""
    factory: TransportFactory = local_transport
    register("local", factory)


__all__ = ["LocalTransport", "local_transport"]
