"""Who may use which node: owner / user / friends / guild / public grants.

One SQL condition, :func:`allowed_clause`, decides whether a user may use a node, and it is
used in both directions: "which nodes may user U use" (:func:`usable_nodes`) and "whose
jobs may node N run" (the scheduler's lease query). Plugins can only narrow access:
``wowlab_can_use_node`` vetoes; ``wowlab_user_groups`` adds outside guild memberships,
which widen only what a ``guild`` grant already offers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from wowlab_core.db import rowcount
from wowlab_core.errors import InvalidRequest, NotFound, PermissionDenied
from wowlab_core.models import (
    AccessType,
    Friendship,
    Guild,
    GuildMember,
    Node,
    NodeAccess,
    User,
)
from wowlab_core.plugins import Hooks

# Fixed aliases (not new ones per call): statements built from them keep the same cache
# key, so SQLAlchemy compiles the lease query once instead of on every lease.
_FRIEND = sa.orm.aliased(Friendship, name="friend")
_GRANT = sa.orm.aliased(NodeAccess, name="grant_")
_MEMBER = sa.orm.aliased(GuildMember, name="member")


def friends_clause(a: Any, b: Any) -> sa.ColumnElement[bool]:
    """SQL: users ``a`` and ``b`` (columns or values) are accepted friends."""
    f = _FRIEND
    return (
        sa.exists()
        .where(
            col(f.status) == "accepted",
            sa.or_(
                sa.and_(f.requester_id == a, col(f.addressee_id) == b),
                sa.and_(f.requester_id == b, col(f.addressee_id) == a),
            ),
        )
        .correlate_except(f)
    )


def allowed_clause(
    *,
    node_id: Any,
    owner_id: Any,
    user_id: Any,
    extra_guild_ids: Iterable[int] = (),
    include_public: Any = True,
) -> sa.ColumnElement[bool]:
    """SQL condition: the user ``user_id`` may use the node ``node_id`` owned by ``owner_id``.

    Each argument is a column or a value, so the same condition filters nodes for a user
    and jobs for a node. ``extra_guild_ids`` are the user's guilds known from plugins.
    ``include_public`` (a value or a column such as ``SimJob.allow_public``) says whether
    a ``public`` grant counts: jobs run on public nodes only when their owner opted in.
    """
    g = _GRANT
    gm = _MEMBER
    extra = list(extra_guild_ids)
    # correlate_except: nested EXISTS must refer to the enclosing query's tables (jobs or
    # nodes), not pull a second copy of them into their own FROM.
    guild_member: sa.ColumnElement[bool] = (
        sa.exists()
        .where(col(gm.guild_id) == g.target_id, col(gm.user_id) == user_id)
        .correlate_except(gm)
    )
    if extra:
        guild_member = sa.or_(guild_member, col(g.target_id).in_(extra))
    granted = (
        sa.exists()
        .where(
            col(g.node_id) == node_id,
            sa.or_(
                sa.and_(
                    col(g.access_type) == AccessType.PUBLIC.value,
                    include_public
                    if hasattr(include_public, "__clause_element__")
                    or isinstance(include_public, sa.ColumnElement)
                    else sa.literal(bool(include_public)),
                ),
                sa.and_(col(g.access_type) == AccessType.USER.value, col(g.target_id) == user_id),
                sa.and_(col(g.access_type) == AccessType.GUILD.value, guild_member),
                sa.and_(
                    col(g.access_type) == AccessType.FRIENDS.value,
                    friends_clause(owner_id, user_id),
                ),
            ),
        )
        .correlate_except(g)
    )
    return sa.or_(owner_id == user_id, granted)


def _extra_groups(hooks: Hooks | None, user: User) -> set[int]:
    return hooks.user_groups(user=user) if hooks is not None and hooks.has_user_groups() else set()


def grants_of(session: Session, node_id: int) -> list[NodeAccess]:
    """A node's access rows."""
    return list(session.exec(select(NodeAccess).where(col(NodeAccess.node_id) == node_id)).all())


def sharing_summary(access_types: Iterable[str]) -> str:
    """Who may use a node besides its owner, in words, from the types of its grants:
    ``owner only``, ``everyone``, or the grants joined (``friends, 1 guild, 2 chosen
    users``)."""
    types = list(access_types)
    if AccessType.PUBLIC.value in types:
        return "everyone"
    parts: list[str] = []
    if AccessType.FRIENDS.value in types:
        parts.append("friends")
    guilds = types.count(AccessType.GUILD.value)
    if guilds:
        parts.append(f"{guilds} guild" + ("s" if guilds > 1 else ""))
    users = types.count(AccessType.USER.value)
    if users:
        parts.append(f"{users} chosen user" + ("s" if users > 1 else ""))
    return ", ".join(parts) or "owner only"


def usable_nodes(
    session: Session,
    user: User,
    *,
    hooks: Hooks | None = None,
    online_only: bool = False,
    include_public: bool = True,
) -> list[Node]:
    """Every claimed node ``user`` may use (their own and those shared with them).

    A node flagged for a wrong result is usable only by its owner.
    """
    assert user.id is not None
    stmt = select(Node).where(
        col(Node.user_id).isnot(None),
        allowed_clause(
            node_id=Node.id,
            owner_id=Node.user_id,
            user_id=user.id,
            extra_guild_ids=_extra_groups(hooks, user),
            include_public=include_public,
        ),
        sa.or_(col(Node.flagged_at).is_(None), col(Node.user_id) == user.id),
    )
    if online_only:
        stmt = stmt.where(col(Node.status) == "online")
    nodes = list(session.exec(stmt.order_by(col(Node.id))).all())
    if hooks is not None and hooks.has_access_veto():
        nodes = [
            n
            for n in nodes
            if hooks.can_use_node(user=user, node=n, grants=grants_of(session, n.id or 0))
        ]
    return nodes


def may_use_node(session: Session, user: User, node: Node, *, hooks: Hooks | None = None) -> bool:
    """Whether ``user`` may run work on ``node`` (public grants included)."""
    if node.user_id is None or node.id is None or user.id is None:
        return False
    if node.flagged_at is not None and node.user_id != user.id:
        return False
    allowed = session.exec(
        select(sa.literal(True)).where(
            allowed_clause(
                node_id=node.id,
                owner_id=sa.literal(node.user_id),
                user_id=user.id,
                extra_guild_ids=_extra_groups(hooks, user),
            )
        )
    ).first()
    if not allowed:
        return False
    if hooks is not None and hooks.has_access_veto():
        return hooks.can_use_node(user=user, node=node, grants=grants_of(session, node.id))
    return True


def grant_access(
    session: Session,
    *,
    node: Node,
    access_type: AccessType | str,
    target_id: int | None = None,
) -> NodeAccess:
    """Add a grant (idempotent). Validates the target; does not commit."""
    kind = _parse_access_type(access_type)
    if kind in (AccessType.USER, AccessType.GUILD):
        if target_id is None:
            raise InvalidRequest(f"a {kind.value} grant needs a target", field="target_id")
        model = User if kind is AccessType.USER else Guild
        if session.get(model, target_id) is None:
            raise NotFound(f"no {kind.value} with id {target_id}", field="target_id")
    elif target_id is not None:
        raise InvalidRequest(f"a {kind.value} grant takes no target", field="target_id")
    existing = session.exec(
        select(NodeAccess).where(
            col(NodeAccess.node_id) == node.id,
            col(NodeAccess.access_type) == kind.value,
            col(NodeAccess.target_id) == target_id
            if target_id is not None
            else col(NodeAccess.target_id).is_(None),
        )
    ).first()
    if existing is not None:
        return existing
    grant = NodeAccess(node_id=node.id or 0, access_type=kind.value, target_id=target_id)
    session.add(grant)
    session.flush()
    return grant


def revoke_access(
    session: Session, *, node: Node, access_type: AccessType | str, target_id: int | None = None
) -> int:
    """Remove matching grants; returns how many. Does not commit."""
    kind = _parse_access_type(access_type)
    stmt = sa.delete(NodeAccess).where(
        col(NodeAccess.node_id) == node.id, col(NodeAccess.access_type) == kind.value
    )
    if target_id is not None:
        stmt = stmt.where(col(NodeAccess.target_id) == target_id)
    result = session.execute(stmt)
    return rowcount(result)


def set_access(
    session: Session, *, node: Node, grants: Sequence[tuple[AccessType | str, int | None]]
) -> list[NodeAccess]:
    """Replace a node's grants with ``grants`` (an empty list means only the owner)."""
    session.execute(sa.delete(NodeAccess).where(col(NodeAccess.node_id) == node.id))
    rows = [grant_access(session, node=node, access_type=t, target_id=i) for t, i in grants]
    if not rows:
        rows = [grant_access(session, node=node, access_type=AccessType.OWNER)]
    return rows


def require_owner(node: Node, user: User) -> None:
    """Raise unless ``user`` owns ``node``."""
    if node.user_id != user.id:
        raise PermissionDenied("only the node's owner may change it")


def _parse_access_type(value: AccessType | str) -> AccessType:
    try:
        return AccessType(value)
    except ValueError:
        names = ", ".join(a.value for a in AccessType)
        raise InvalidRequest(
            f"unknown access type {value!r} (one of {names})", field="access_type"
        ) from None


__all__ = [
    "allowed_clause",
    "friends_clause",
    "grant_access",
    "grants_of",
    "may_use_node",
    "require_owner",
    "revoke_access",
    "set_access",
    "sharing_summary",
    "usable_nodes",
]
