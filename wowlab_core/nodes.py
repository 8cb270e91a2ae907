"""Registering nodes and claiming them with a code.

A node registers and gets an id, a secret token (only its sha256 is stored) and a claim
code that expires. Its owner types the code in the portal (or ``wowlab sim`` does it for
its local nodes); the code is single use. A pending node's expired code is renewed when
the node asks for its status, so the code it shows always works.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, SQLModel, col, select

from wowlab_core.access import grant_access, grants_of, sharing_summary
from wowlab_core.claim_codes import (
    DEFAULT_LIFETIME,
    RateLimiter,
    generate_claim_code,
    is_valid_claim_code,
    normalize_claim_code,
)
from wowlab_core.completions import is_row_id
from wowlab_core.db import rowcount, write_session
from wowlab_core.errors import (
    AuthenticationFailed,
    ClaimCodeExpired,
    ClaimCodeInvalid,
    InvalidRequest,
)
from wowlab_core.leases import HELD_COLUMNS, HELD_CONDITIONS, Held
from wowlab_core.models import AccessType, Node, NodeStatus, User, utcnow
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import ClaimStatus, NodeInfo
from wowlab_core.scheduler import hash_token, tokens_match

MAX_PARALLEL_LIMIT = 256
NODE_TOKEN_BYTES = 32
MAX_ENGINES = 32
MAX_LABELS = 32
MAX_LABEL_LENGTH = 64


@dataclass(frozen=True)
class NewNode:
    """A registered node and its secret token (the only time the token is known)."""

    node: Node
    token: str


def _new_code(session: Session, hooks: Hooks | None, now: datetime) -> str:
    # Free the codes of pending nodes that expired, so they can be handed out again.
    session.execute(
        sa.update(Node)
        .where(col(Node.user_id).is_(None), col(Node.claim_expires_at) < now)
        .values(claim_code=None)
        .execution_options(synchronize_session=False)
    )
    for _ in range(20):
        code = (hooks.claim_code() if hooks is not None else None) or generate_claim_code()
        if not is_valid_claim_code(code):
            raise InvalidRequest(f"a plugin made an invalid claim code {code!r}")
        taken = session.exec(select(Node.id).where(col(Node.claim_code) == code)).first()
        if taken is None:
            return code
    raise RuntimeError("could not find a free claim code after 20 tries")


def validate_node_info(info: NodeInfo) -> None:
    """Raise :class:`InvalidRequest` for a bad registration."""
    if not isinstance(info.name, str) or not info.name.strip() or len(info.name) > 100:
        raise InvalidRequest("node name must be 1 to 100 characters", field="name")
    if (
        isinstance(info.max_parallel, bool)
        or not isinstance(info.max_parallel, int)
        or not 1 <= info.max_parallel <= MAX_PARALLEL_LIMIT
    ):
        raise InvalidRequest(
            f"max_parallel must be between 1 and {MAX_PARALLEL_LIMIT}", field="max_parallel"
        )
    check_capabilities(engines=info.engines, labels=info.labels)


def _printable(text: str) -> bool:
    # No control characters: PostgreSQL refuses NUL in text and JSON, and the others
    # have no place in a name shown on pages.
    return not any(ord(c) < 32 or ord(c) == 127 for c in text)


def check_capabilities(*, engines: object, labels: object) -> None:
    """Raise :class:`InvalidRequest` unless ``engines`` is None or ``{name: version}``
    and ``labels`` None or a list of short strings (no control characters in either)."""
    if engines is not None and (
        not isinstance(engines, dict)
        or len(engines) > MAX_ENGINES
        or not all(
            isinstance(k, str)
            and isinstance(v, str)
            and 0 < len(k) <= 64
            and len(v) <= 64
            and _printable(k)
            and _printable(v)
            for k, v in engines.items()
        )
    ):
        raise InvalidRequest(
            f"engines must map up to {MAX_ENGINES} engine names to versions", field="engines"
        )
    if labels is not None and (
        not isinstance(labels, list)
        or len(labels) > MAX_LABELS
        or not all(
            isinstance(x, str) and 0 < len(x.strip()) <= MAX_LABEL_LENGTH and _printable(x)
            for x in labels
        )
    ):
        raise InvalidRequest(
            f"labels must be a list of up to {MAX_LABELS} names of 1 to "
            f"{MAX_LABEL_LENGTH} characters",
            field="labels",
        )


def update_capabilities(node: Node, *, engines: object, labels: object) -> None:
    """Record what a node advertises (None: keep what is known). Validates first."""
    check_capabilities(engines=engines, labels=labels)
    if engines is not None and engines != node.engines:
        node.engines = dict(sorted(engines.items()))  # type: ignore[attr-defined]
    if labels is not None:
        clean = sorted({str(x).strip() for x in labels})  # type: ignore[attr-defined]
        if clean != node.labels:
            node.labels = clean


def register_node(
    session: Session,
    *,
    info: NodeInfo,
    hooks: Hooks | None = None,
    lifetime: timedelta = DEFAULT_LIFETIME,
    now: datetime | None = None,
) -> NewNode:
    """Create a pending node with a fresh token and claim code. Does not commit."""
    validate_node_info(info)
    now = now or utcnow()
    token = secrets.token_urlsafe(NODE_TOKEN_BYTES)
    node = Node(
        name=info.name.strip(),
        max_parallel=info.max_parallel,
        cores=info.cores,
        platform=(info.platform or "")[:128] or None,
        version=(info.version or "")[:64] or None,
        engines=dict(sorted(info.engines.items())) if info.engines is not None else None,
        labels=sorted({x.strip() for x in info.labels}) if info.labels is not None else None,
        token_hash=hash_token(token),
        claim_code=_new_code(session, hooks, now),
        claim_expires_at=now + lifetime,
        status=NodeStatus.PENDING.value,
        last_seen_at=now,
    )
    session.add(node)
    session.flush()
    return NewNode(node=node, token=token)


def authenticate_node(session: Session, *, node_id: int, token: str) -> Node:
    """The node that ``token`` belongs to; it must be ``node_id``.

    Raises:
        AuthenticationFailed: unknown node, or the token does not match.
    """
    node = session.get(Node, node_id) if isinstance(node_id, int) else None
    if node is None or not isinstance(token, str) or not tokens_match(token, node.token_hash):
        raise AuthenticationFailed("node id or token is not valid")
    return node


#: The node's row by id, built once (building a statement costs more CPU than running it).
_NODE_TABLE: sa.Table = SQLModel.metadata.tables["nodes"]
_NODE_ROW = sa.select(*_NODE_TABLE.c).where(
    _NODE_TABLE.c.id == sa.bindparam("n_id", type_=sa.Integer)
)
_NODE_ROWS = sa.select(*_NODE_TABLE.c).where(
    _NODE_TABLE.c.id.in_(sa.bindparam("n_ids", expanding=True))
)
_USERS: sa.Table = SQLModel.metadata.tables["users"]
_ACCESS: sa.Table = SQLModel.metadata.tables["node_access"]
#: Nodes with what a heartbeat's answer names besides: the owner's name and the types of
#: the node's grants (comma-joined), in the same query.
_NODE_ROWS_WITH_SHARING = _NODE_ROWS.add_columns(
    sa.select(_USERS.c.username)
    .where(_USERS.c.id == _NODE_TABLE.c.user_id)
    .scalar_subquery()
    .label("wowlab_owner_name"),
    sa.select(sa.func.aggregate_strings(_ACCESS.c.access_type, ","))
    .where(_ACCESS.c.node_id == _NODE_TABLE.c.id)
    .scalar_subquery()
    .label("wowlab_access_types"),
)
_CHUNKS: sa.Table = SQLModel.metadata.tables["sim_chunks"]
_REQUEST_KEYS: sa.Table = SQLModel.metadata.tables["request_keys"]
#: A heartbeat batch's read, one query where it was three: nodes with their sharing, the
#: chunks each holds (:func:`~wowlab_core.leases.beat_many`'s ``held_by``) joined on,
#: and which of the batch's request keys are stored (comma-joined; the same on every
#: row: a subquery that does not depend on the row is run once). A node that holds k
#: chunks comes in k rows (k is at most its ``max_parallel``); ordered by chunk id too,
#: so that the batch extends leases in one order (fewer lock waits between bridges).
_NODE_ROWS_HOLDING = (
    _NODE_ROWS_WITH_SHARING.add_columns(
        *(c.label(f"wowlab_held_{c.name}") for c in HELD_COLUMNS),
        sa.select(sa.func.aggregate_strings(_REQUEST_KEYS.c.key, ","))
        .where(_REQUEST_KEYS.c.key.in_(sa.bindparam("r_keys", expanding=True)))
        .scalar_subquery()
        .label("wowlab_stored_keys"),
    )
    .select_from(
        _NODE_TABLE.outerjoin(
            _CHUNKS, sa.and_(_CHUNKS.c.node_id == _NODE_TABLE.c.id, *HELD_CONDITIONS)
        )
    )
    .order_by(_NODE_TABLE.c.id, _CHUNKS.c.id)
)
_HELD_KEYS = tuple(f"wowlab_held_{c.name}" for c in HELD_COLUMNS)
_NODE_KEYS = tuple(_NODE_TABLE.c.keys())
#: The columns a lease or a completion changes on its node (:func:`mark_seen`, throughput).
CALL_COLUMNS = ("last_seen_at", "status", "iterations_per_second", "events_per_second")
#: The columns a heartbeat changes on its node (:func:`mark_seen`, :func:`update_capabilities`).
HEARTBEAT_COLUMNS = ("last_seen_at", "status", "engines", "labels")


#: Speed columns: a new measurement is written with ``last_seen_at`` (so at most once per
#: :data:`SEEN_RESOLUTION`), or at once when the node had none.
_SPEED_COLUMNS = frozenset({"iterations_per_second", "events_per_second"})


@dataclass
class NodeView:
    """A node as one request read it, outside the ORM: :attr:`node` is a detached copy
    the request may change; :meth:`save` writes what changed of :attr:`columns` (and
    nothing else, so a concurrent change of another column is kept)."""

    node: Node
    before: tuple[object, ...]
    columns: tuple[str, ...] = CALL_COLUMNS
    #: The owner's name and the types of the node's grants, when read
    #: (:func:`read_beating_nodes`).
    owner: str | None = None
    access_types: tuple[str, ...] = ()

    def changes(self) -> dict[str, object]:
        """The columns to write, by name (empty: nothing to write).

        A node's speed is an average of its chunks' measured speeds (weight 0.3 for the
        newest): a node that sends results several times a second has only the
        measurements written with its ``last_seen_at`` averaged, which keeps its row to
        one write a second, like its heartbeats."""
        changed: dict[str, object] = {}
        speed_only = True
        for name, old in zip(self.columns, self.before, strict=True):
            new = getattr(self.node, name)
            if new != old:
                changed[name] = new
                speed_only = speed_only and name in _SPEED_COLUMNS and old is not None
        return {} if speed_only else changed

    def save(self, conn: sa.Connection) -> None:
        """Write the changed columns, in the caller's transaction."""
        save_nodes(conn, [self])


def save_nodes(conn: sa.Connection, views: Sequence[NodeView]) -> None:
    """Write what changed of each node, one statement per set of changed columns (a
    batch of heartbeats is usually one executemany), in the order of their ids (as the
    ORM's flush does: concurrent batches lock their rows in one order)."""
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for view in sorted(views, key=lambda v: v.node.id or 0):
        changed = view.changes()
        if changed:
            groups.setdefault(tuple(changed), []).append(
                {"n_id": view.node.id, **{f"n_{n}": v for n, v in changed.items()}}
            )
    for columns, rows in groups.items():
        conn.execute(_node_update(columns), rows)


@lru_cache(maxsize=32)
def _node_update(columns: tuple[str, ...]) -> sa.Update:
    table = _NODE_TABLE
    values = {name: sa.bindparam(f"n_{name}", type_=table.c[name].type) for name in columns}
    where = table.c.id == sa.bindparam("n_id", type_=sa.Integer)
    return sa.update(table).where(where).values(values)


def _view(row: sa.Row[Any], columns: tuple[str, ...], *, sharing: bool = False) -> NodeView:
    # As the ORM's loading builds an object: a new instance whose attributes are set in
    # its __dict__ (``Node(**row)`` validates and tracks each value: 30x the CPU).
    node = sa.orm.class_mapper(Node).class_manager.new_instance()
    values = row._mapping
    node.__dict__.update({key: values[key] for key in _NODE_KEYS} if sharing else values)
    view = NodeView(node, tuple(values[name] for name in columns), columns)
    if sharing:
        types = values["wowlab_access_types"]
        view.owner = values["wowlab_owner_name"]
        view.access_types = tuple(types.split(",")) if types else ()
    return view


def read_node(conn: sa.Connection, *, node_id: int, token: str) -> NodeView:
    """:func:`authenticate_node` without the ORM (a lease or a completion reads its node
    once and changes at most four columns: loading it as an ORM object costs more CPU
    than the rest of a small lease).

    Raises:
        AuthenticationFailed: unknown node, or the token does not match.
    """
    row = conn.execute(_NODE_ROW, {"n_id": node_id}).first() if is_row_id(node_id) else None
    return _with_token(_view(row, CALL_COLUMNS) if row is not None else None, token)


def _with_token(view: NodeView | None, token: object) -> NodeView:
    """``view`` if ``token`` is its node's.

    Raises:
        AuthenticationFailed: no such node, or the token does not match.
    """
    if view is None or not isinstance(token, str) or not tokens_match(token, view.node.token_hash):
        raise AuthenticationFailed("node id or token is not valid")
    return view


@dataclass
class BeatingNodes:
    """What :func:`read_beating_nodes` found."""

    #: The nodes, by id, with their owner and grants (:attr:`NodeView.owner`), watching
    #: the columns a heartbeat changes (:data:`HEARTBEAT_COLUMNS`).
    views: dict[int, NodeView]
    #: The chunks each node holds, by node id (:func:`~wowlab_core.leases.beat_many`).
    held_by: dict[int, list[Held]]
    #: Those of the request keys asked about that are stored (requests carried out
    #: before): the caller reads their answers.
    stored_keys: set[str]

    def authenticated(self, node_id: int, token: object) -> NodeView:
        """The node ``node_id`` names, if ``token`` is its.

        Raises:
            AuthenticationFailed: no such node read, or the token does not match.
        """
        return _with_token(self.views.get(node_id) if is_row_id(node_id) else None, token)


def read_beating_nodes(
    conn: sa.Connection, node_ids: Iterable[int], request_keys: Collection[str]
) -> BeatingNodes:
    """What a batch of heartbeats reads, in one query: the nodes, the chunks each holds
    (a node that holds k chunks comes in k rows), and which of ``request_keys`` are stored
    (the caller reads their answers). Keys are
    :func:`~wowlab_core.request_keys.request_key` digests; a key with a comma in it is
    reported as stored, so that the caller looks it up, and so are all of them when the
    query finds no node (a repeat of a request whose node has gone still gets its first
    answer, as before the keys were asked here)."""
    ids = sorted({i for i in node_ids if is_row_id(i)})
    found = BeatingNodes({}, {}, set(request_keys))
    if not ids:
        return found
    keys = [key for key in request_keys if "," not in key]
    stored: str | None = None
    for row in conn.execute(_NODE_ROWS_HOLDING, {"n_ids": ids, "r_keys": keys}):
        values = row._mapping
        if row.id not in found.views:
            found.views[row.id] = _view(row, HEARTBEAT_COLUMNS, sharing=True)
            found.held_by[row.id] = []
            stored = values["wowlab_stored_keys"]
        if values[_HELD_KEYS[0]] is not None:
            found.held_by[row.id].append(cast(Held, tuple(values[key] for key in _HELD_KEYS)))
    if found.views:
        found.stored_keys = set(stored.split(",")) if stored is not None else set()
        found.stored_keys.update(key for key in request_keys if "," in key)
    return found


def claim_status(
    session: Session,
    *,
    node: Node,
    hooks: Hooks | None = None,
    lifetime: timedelta = DEFAULT_LIFETIME,
    now: datetime | None = None,
) -> ClaimStatus:
    """What the node should show: claimed (by whom), or its code (renewed if expired)."""
    now = now or utcnow()
    if node.user_id is not None:
        owner = session.get(User, node.user_id)
        return ClaimStatus(
            claimed=True,
            owner=owner.username if owner else None,
            name=node.name,
            max_parallel=node.max_parallel,
            sharing=sharing_summary(g.access_type for g in grants_of(session, node.id or 0)),
        )
    if node.claim_code is None or node.claim_expires_at is None or node.claim_expires_at <= now:
        node.claim_code = _new_code(session, hooks, now)
        node.claim_expires_at = now + lifetime
    node.last_seen_at = now
    session.add(node)
    return ClaimStatus(
        claimed=False,
        name=node.name,
        claim_code=node.claim_code,
        claim_expires_at=node.claim_expires_at,
    )


def find_pending_node(session: Session, *, code: str, now: datetime | None = None) -> Node:
    """The pending node showing ``code`` (as typed by a user).

    Raises:
        ClaimCodeInvalid: no node shows this code (typo, or already claimed).
        ClaimCodeExpired: the code's lifetime is over.
    """
    now = now or utcnow()
    normalized = normalize_claim_code(code)
    node = session.exec(
        select(Node).where(col(Node.claim_code) == normalized, col(Node.user_id).is_(None))
    ).first()
    if node is None:
        raise ClaimCodeInvalid("no node is waiting with this claim code", field="code")
    if node.claim_expires_at is None or node.claim_expires_at <= now:
        raise ClaimCodeExpired(
            "this claim code has expired; the node shows a new one", field="code"
        )
    return node


def claim_node(
    session: Session,
    *,
    user: User,
    code: str,
    name: str | None = None,
    now: datetime | None = None,
) -> Node:
    """Give the pending node showing ``code`` to ``user``. Does not commit.

    The code is cleared (single use); the node gets an ``owner`` grant (only its owner
    may use it until they share it). Announce with ``hooks.node_claimed`` after commit.
    """
    now = now or utcnow()
    node = find_pending_node(session, code=code, now=now)
    if name is not None:
        if not name.strip() or len(name) > 100:
            raise InvalidRequest("node name must be 1 to 100 characters", field="name")
        node.name = name.strip()
    node.user_id = user.id
    node.claim_code = None
    node.claim_expires_at = None
    node.claimed_at = now
    node.status = NodeStatus.ONLINE.value
    session.add(node)
    session.flush()
    grant_access(session, node=node, access_type=AccessType.OWNER)
    return node


def claim_and_announce(
    db: DbEngine,
    *,
    user_id: int,
    code: str,
    name: str | None = None,
    hooks: Hooks | None = None,
    limiter: RateLimiter | None = None,
) -> Node:
    """Claim in its own transaction, then announce ``wowlab_node_claimed`` after the commit.

    ``limiter`` (if given) counts the attempt against the user before the code is looked
    at, so guessing codes is rate-limited.
    """
    if limiter is not None:
        limiter.hit(f"user:{user_id}", what="claim attempts")
    with write_session(db) as session:
        user = session.get(User, user_id)
        if user is None:
            raise InvalidRequest("unknown user", field="user_id")
        node = claim_node(session, user=user, code=code, name=name)
        session.commit()
    if hooks is not None:
        hooks.node_claimed(node=node, user=user)
    return node


#: ``last_seen_at`` is written at most this often: a busy node calls many times a second,
#: and every write is a row update; presence is judged in tens of seconds.
SEEN_RESOLUTION = timedelta(seconds=1)


def mark_seen(node: Node, *, now: datetime | None = None) -> None:
    """Record that the node is alive (claimed nodes become online)."""
    now = now or utcnow()
    if node.last_seen_at is None or now - node.last_seen_at >= SEEN_RESOLUTION:
        node.last_seen_at = now
    if node.user_id is not None and node.status != NodeStatus.ONLINE.value:
        node.status = NodeStatus.ONLINE.value


def mark_offline_nodes(
    session: Session, *, silent_for: timedelta, now: datetime | None = None
) -> int:
    """Mark online nodes that have not been heard of for ``silent_for`` as offline."""
    now = now or utcnow()
    result = session.execute(
        sa.update(Node)
        .where(
            col(Node.status) == NodeStatus.ONLINE.value, col(Node.last_seen_at) < now - silent_for
        )
        .values(status=NodeStatus.OFFLINE.value)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def delete_stale_nodes(session: Session, *, days: int = 30, now: datetime | None = None) -> int:
    """Delete nodes offline (or never claimed) for ``days``; chunk history keeps its rows."""
    return len(delete_stale_node_ids(session, days=days, now=now))


def delete_stale_node_ids(
    session: Session, *, days: int = 30, now: datetime | None = None
) -> list[int]:
    """:func:`delete_stale_nodes`, returning the deleted nodes' ids (to announce with
    ``hooks.node_removed`` after the commit). Does not commit."""
    now = now or utcnow()
    ids = list(
        session.exec(
            select(Node.id).where(
                col(Node.status).in_((NodeStatus.OFFLINE.value, NodeStatus.PENDING.value)),
                col(Node.last_seen_at) < now - timedelta(days=days),
            )
        ).all()
    )
    if ids:
        session.execute(sa.delete(Node).where(col(Node.id).in_(ids)))
    return [i for i in ids if i is not None]


__all__ = [
    "CALL_COLUMNS",
    "HEARTBEAT_COLUMNS",
    "MAX_PARALLEL_LIMIT",
    "BeatingNodes",
    "NewNode",
    "NodeView",
    "authenticate_node",
    "claim_and_announce",
    "claim_node",
    "claim_status",
    "delete_stale_node_ids",
    "delete_stale_nodes",
    "find_pending_node",
    "mark_offline_nodes",
    "mark_seen",
    "read_beating_nodes",
    "read_node",
    "register_node",
    "save_nodes",
    "validate_node_info",
]
