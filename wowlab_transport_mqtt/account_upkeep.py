"""Broker accounts follow the nodes: a removed node's account is deleted.

At once for a removal announced in this process (the ``wowlab_node_removed`` hook: the
portal that hosts the bridge), and by a periodic sweep for the others (a portal in another
process, ``wowlab db cleanup``): list the node accounts, delete those whose node is gone.
Deleting an account also disconnects the node's connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from sqlalchemy.engine import Engine as DbEngine

from wowlab_transport_mqtt import presence
from wowlab_transport_mqtt.dynsec import NodeAccounts

log = logging.getLogger(__name__)


class AccountUpkeep:
    """Deletes the broker accounts of removed nodes. :meth:`run` in the bridge's loop."""

    def __init__(
        self,
        accounts: NodeAccounts,
        db: DbEngine,
        *,
        sweep_seconds: float,
        on_deleted: Callable[[int], None],
        may_sweep: Callable[[], bool] = lambda: True,
    ) -> None:
        self.accounts = accounts
        #: Whether this bridge sweeps (of several bridges, the one doing the chores).
        self.may_sweep = may_sweep
        self.db = db
        self.sweep_seconds = sweep_seconds
        self._on_deleted = on_deleted
        self._send, self._receive = anyio.create_memory_object_stream[int](1000)
        self._loop_token: anyio.lowlevel.EventLoopToken | None = None
        self._loop_thread: int | None = None

    def removed(self, node_id: int) -> None:
        """Node ``node_id`` was removed (call from any thread: the hook's)."""
        if self._loop_token is None:
            return  # not running: the next sweep deletes it
        try:
            if threading.get_ident() == self._loop_thread:
                self._send.send_nowait(node_id)
            else:
                anyio.from_thread.run_sync(self._send.send_nowait, node_id, token=self._loop_token)
        except anyio.WouldBlock:
            log.warning("too many removals at once; the sweep deletes node %s's account", node_id)
        except Exception as exc:
            log.debug("could not pass on the removal of node %s: %s", node_id, exc)

    async def delete(self, node_id: int) -> None:
        """Delete node ``node_id``'s account."""
        await self.accounts.delete(node_id)
        self._on_deleted(node_id)
        log.info("deleted the broker account of removed node %s", node_id)

    async def sweep(self) -> int:
        """Delete the accounts of nodes that no longer exist. Returns how many."""
        listed = await self.accounts.node_ids()
        existing = await anyio.to_thread.run_sync(presence.existing_node_ids, self.db, listed)
        gone = sorted(listed - existing)
        for node_id in gone:
            await self.delete(node_id)
        return len(gone)

    async def run(self) -> None:
        """Delete announced removals as they come, and sweep every ``sweep_seconds``."""
        self._loop_token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._delete_announced)
                while True:
                    try:
                        if self.may_sweep():
                            await self.sweep()
                    except Exception:
                        log.exception("could not sweep the broker accounts of removed nodes")
                    await anyio.sleep(self.sweep_seconds)
        finally:
            self._loop_token = None

    async def _delete_announced(self) -> None:
        async for node_id in self._receive:
            try:
                await self.delete(node_id)
            except Exception:
                log.exception("could not delete the broker account of node %s", node_id)


__all__ = ["AccountUpkeep"]
