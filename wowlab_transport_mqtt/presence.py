"""What the bridge reads and writes besides the coordinator's operations: presence,
which nodes to wake, and which nodes exist (for their broker accounts).

The coordinator's operations all start from a node's token; a last will carries none (the
broker sends it for a node that can no longer speak). These few statements mark nodes
online/offline from their status topic and find the connected nodes that may run pending
chunks. All are blocking; the bridge calls them through ``anyio.to_thread``.
"""

from __future__ import annotations

import random
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, select

from wowlab_core.access import allowed_clause
from wowlab_core.db import read_session, rowcount, write_session
from wowlab_core.errors import AuthenticationFailed
from wowlab_core.models import ChunkStatus, Node, NodeStatus, SimChunk, SimJob, utcnow
from wowlab_core.nodes import authenticate_node
from wowlab_core.scheduler import ACTIVE_JOB_STATUSES

#: Wake nodes until their workers could take this many times the pending chunks.
WAKE_OVERSUPPLY = 2


def mark_online(db: DbEngine, node_id: int) -> bool:
    """A claimed node said ``online``: mark it online and seen now. True if it changed."""
    with write_session(db) as session:
        result = session.execute(
            sa.update(Node)
            .where(col(Node.id) == node_id, col(Node.user_id).isnot(None))
            .values(status=NodeStatus.ONLINE.value, last_seen_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return rowcount(result) > 0


def mark_offline(db: DbEngine, node_id: int) -> bool:
    """A node's last will (or goodbye) arrived: an online node becomes offline. True if it
    changed. Its leases are left alone: they run out and are reissued as usual."""
    with write_session(db) as session:
        result = session.execute(
            sa.update(Node)
            .where(col(Node.id) == node_id, col(Node.status) == NodeStatus.ONLINE.value)
            .values(status=NodeStatus.OFFLINE.value)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return rowcount(result) > 0


def pending_marker(db: DbEngine) -> tuple[int, int]:
    """(number of pending chunks, highest pending chunk id): changes when work appears."""
    with read_session(db) as session:
        count, highest = session.execute(
            sa.select(sa.func.count(col(SimChunk.id)), sa.func.max(col(SimChunk.id))).where(
                col(SimChunk.status) == ChunkStatus.PENDING.value
            )
        ).one()
    return int(count or 0), int(highest or 0)


def nodes_to_wake(db: DbEngine, present: Collection[int], idle: Collection[int] = ()) -> list[int]:
    """Connected nodes (``present``) that may run pending chunks, enough of them to take
    the pending chunks (with some to spare): nodes known to be ``idle`` first, each group
    in random order so no node is always first.

    Access is decided by the grants only (the scheduler also asks plugins); a wake-up is a
    hint, and a node that may not run anything just leases nothing.
    """
    if not present:
        return []
    chosen: dict[int, int] = {}
    with read_session(db) as session:
        owners = session.execute(
            sa.select(col(SimJob.user_id), col(SimJob.own_nodes_only), sa.func.count())
            .join(SimChunk, col(SimChunk.job_id) == col(SimJob.id))
            .where(
                col(SimChunk.status) == ChunkStatus.PENDING.value,
                col(SimJob.status).in_(ACTIVE_JOB_STATUSES),
            )
            .group_by(col(SimJob.user_id), col(SimJob.own_nodes_only))
        ).all()
        for user_id, own_only, pending in owners:
            stmt = select(Node.id, Node.max_parallel).where(
                col(Node.id).in_(list(present)),
                col(Node.user_id).isnot(None),
                allowed_clause(node_id=Node.id, owner_id=Node.user_id, user_id=user_id),
            )
            if own_only:
                stmt = stmt.where(col(Node.user_id) == user_id)
            candidates = list(session.exec(stmt).all())
            random.shuffle(candidates)
            candidates.sort(key=lambda row: row[0] not in idle)  # stable: idle ones first
            workers = 0
            for node_id, max_parallel in candidates:
                if workers >= WAKE_OVERSUPPLY * pending:
                    break
                if node_id is not None and node_id not in chosen:
                    workers += max_parallel or 1
                    chosen[node_id] = 1
    return list(chosen)


def token_is_valid(db: DbEngine, node_id: int, token: str) -> bool:
    """Whether ``token`` is node ``node_id``'s token (the node exists)."""
    with read_session(db) as session:
        try:
            authenticate_node(session, node_id=node_id, token=token)
        except AuthenticationFailed:
            return False
    return True


def existing_node_ids(db: DbEngine, node_ids: Collection[int]) -> set[int]:
    """Which of ``node_ids`` still exist."""
    found: set[int] = set()
    wanted = sorted(node_ids)
    with read_session(db) as session:
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            rows = session.exec(select(Node.id).where(col(Node.id).in_(batch))).all()
            found.update(i for i in rows if i is not None)
    return found


__all__ = [
    "existing_node_ids",
    "mark_offline",
    "mark_online",
    "nodes_to_wake",
    "pending_marker",
    "token_is_valid",
]
