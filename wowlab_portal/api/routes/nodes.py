"""A user's nodes: list, claim by code, rename, share, remove; nodes shared with me.

(The node-facing endpoints, which a node calls with its own token, are in ``node.py``.)
A node is visible to its owner and to users a grant lets use it; only its owner changes
it. A node the caller may not see answers 404, as if it did not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import anyio.to_thread
import sqlalchemy as sa
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from wowlab_core import access
from wowlab_core.claim_codes import format_claim_code
from wowlab_core.errors import InvalidRequest, NotFound
from wowlab_core.jobs import capacity_for
from wowlab_core.leases import is_trusted
from wowlab_core.models import AccessType, ChunkStatus, Guild, Node, NodeAccess, SimChunk, User
from wowlab_core.nodes import (
    MAX_PARALLEL_LIMIT,
    claim_and_announce,
    find_pending_node,
    update_capabilities,
)
from wowlab_portal.accounts import user_by_name
from wowlab_portal.api.deps import (
    MAX_ID,
    CurrentUser,
    HooksDep,
    IdPath,
    LimitersDep,
    SessionDep,
    client_address,
)
from wowlab_portal.api.errors import USER_ERRORS
from wowlab_portal.social import membership

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"], responses=USER_ERRORS)

CodePath = Annotated[str, Path(min_length=1, max_length=32)]


class NodePublic(BaseModel):
    """A node as a user who may see it sees it."""

    id: int
    name: str
    owner: str | None
    mine: bool
    status: str
    max_parallel: int
    cores: int | None
    platform: str | None
    version: str | None
    last_seen_at: datetime | None
    #: Chunks it is running now.
    leased_chunks: int
    #: Measured iterations per second of the whole node (all its workers).
    sims_per_second: float | None
    #: Engines it runs (name -> version) and its labels, as it advertised them.
    engines: dict[str, str] | None = None
    labels: list[str] | None = None
    #: Results of this node that other nodes confirmed in a row.
    trust_score: int = 0
    #: Whether it reached the score at which its results are sampled at the base rate.
    trusted: bool = False
    #: Set when another node's run contradicted one of its results.
    flagged_at: datetime | None = None
    flag_reason: str | None = None


class Capacity(BaseModel):
    """What I can use now: online nodes, their workers, measured iterations per second."""

    nodes: int
    workers: int
    sims_per_second: float


class AvailableNodes(BaseModel):
    """Others' nodes shared with me, and the capacity of every online node I may use."""

    nodes: list[NodePublic]
    capacity: Capacity


class ClaimPreview(BaseModel):
    """The pending node showing a code, to confirm before claiming it."""

    code: str
    name: str
    platform: str | None
    cores: int | None
    version: str | None
    expires_at: datetime | None


class ClaimRequest(BaseModel):
    """A claim code as shown by the node, and the name to give the node."""

    code: str = Field(max_length=32)
    name: str | None = Field(default=None, max_length=100)


class NodeUpdate(BaseModel):
    """What the owner may change."""

    name: str | None = Field(default=None, max_length=100)
    max_parallel: int | None = Field(default=None, ge=1, le=MAX_PARALLEL_LIMIT)
    labels: list[str] | None = Field(
        default=None,
        max_length=32,
        description="Labels access rules can look at (replaces the node's; a node that "
        "advertises labels itself replaces them at its next heartbeat).",
    )


class Grant(BaseModel):
    """One way to share a node: ``user`` (by ``username``), ``friends``, ``guild``
    (by ``guild_id``, one of mine) or ``public``. No grants: only me."""

    access_type: Literal["user", "friends", "guild", "public"]
    username: str | None = Field(default=None, max_length=64)
    guild_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class GrantPublic(BaseModel):
    """A grant with the name of its target."""

    access_type: str
    target_id: int | None
    target_name: str | None


class AccessUpdate(BaseModel):
    """The complete list of grants (replaces the current ones)."""

    grants: list[Grant] = Field(max_length=100)


def _leased_counts(session: Session, node_ids: list[int]) -> dict[int, int]:
    if not node_ids:
        return {}
    rows = session.exec(
        select(SimChunk.node_id, sa.func.count())
        .where(
            col(SimChunk.node_id).in_(node_ids),
            col(SimChunk.status) == ChunkStatus.LEASED.value,
        )
        .group_by(col(SimChunk.node_id))
    ).all()
    return {n: c for n, c in rows if n is not None}


def describe(session: Session, user: User, nodes: list[Node]) -> list[NodePublic]:
    """The public form of nodes, with their current work."""
    leased = _leased_counts(session, [n.id for n in nodes if n.id is not None])
    owner_ids = {n.user_id for n in nodes if n.user_id is not None}
    owners = (
        dict(session.exec(select(User.id, User.username).where(col(User.id).in_(owner_ids))).all())
        if owner_ids
        else {}
    )
    return [
        NodePublic(
            id=n.id or 0,
            name=n.name,
            owner=owners.get(n.user_id),
            mine=n.user_id == user.id,
            status=n.status,
            max_parallel=n.max_parallel,
            cores=n.cores,
            platform=n.platform,
            version=n.version,
            last_seen_at=n.last_seen_at,
            leased_chunks=leased.get(n.id or 0, 0),
            sims_per_second=(
                round(n.iterations_per_second * n.max_parallel, 1)
                if n.iterations_per_second is not None
                else None
            ),
            engines=n.engines,
            labels=n.labels,
            trust_score=n.trust_score,
            trusted=is_trusted(n),
            flagged_at=n.flagged_at,
            flag_reason=n.flag_reason,
        )
        for n in nodes
    ]


def visible_node(session: Session, user: User, node_id: int, hooks: HooksDep) -> Node:
    """A node the user owns or may use, else :class:`NotFound`."""
    node = session.get(Node, node_id)
    if node is None or not (
        node.user_id == user.id or access.may_use_node(session, user, node, hooks=hooks)
    ):
        raise NotFound(f"you have no node with id {node_id}", field="node_id")
    return node


def owned_node(session: Session, user: User, node_id: int, hooks: HooksDep) -> Node:
    """A node the user owns; 403 if they only may use it, 404 if they may not see it."""
    node = visible_node(session, user, node_id, hooks)
    access.require_owner(node, user)
    return node


def _limit_claims(request: Request, limiters: LimitersDep, user: User) -> None:
    limiters["claim_address"].hit(
        f"address:{client_address(request)}", what="claim attempts from your address"
    )
    limiters["claim_user"].hit(f"user:{user.id}", what="claim attempts")


@router.get("")
def my_nodes(user: CurrentUser, session: SessionDep) -> list[NodePublic]:
    """My nodes."""
    nodes = session.exec(select(Node).where(col(Node.user_id) == user.id).order_by(col(Node.id)))
    return describe(session, user, list(nodes.all()))


@router.get("/available")
def available_nodes(user: CurrentUser, session: SessionDep, hooks: HooksDep) -> AvailableNodes:
    """Others' nodes I may use, and how much capacity I can use now (mine included)."""
    shared = [n for n in access.usable_nodes(session, user, hooks=hooks) if n.user_id != user.id]
    capacity = capacity_for(session, user=user, hooks=hooks)
    return AvailableNodes(
        nodes=describe(session, user, shared),
        capacity=Capacity(
            nodes=capacity.nodes,
            workers=capacity.workers,
            sims_per_second=round(capacity.iterations_per_second, 1),
        ),
    )


@router.get("/claim/{code}")
def preview_claim(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    limiters: LimitersDep,
    code: CodePath,
) -> ClaimPreview:
    """The node showing this code (name, platform, cores), to confirm before claiming."""
    # A preview reveals as much as a claim attempt: it counts against the same limits.
    _limit_claims(request, limiters, user)
    node = find_pending_node(session, code=code)
    return ClaimPreview(
        code=format_claim_code(node.claim_code or ""),
        name=node.name,
        platform=node.platform,
        cores=node.cores,
        version=node.version,
        expires_at=node.claim_expires_at,
    )


@router.post("/claim", status_code=201)
async def claim(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    limiters: LimitersDep,
    hooks: HooksDep,
    body: ClaimRequest,
) -> NodePublic:
    """Claim the node showing ``code``; it becomes mine, usable only by me until shared."""
    # Counted in the database (or Redis): in a worker thread, off the event loop.
    await anyio.to_thread.run_sync(
        lambda: limiters["claim_address"].hit(
            f"address:{client_address(request)}", what="claim attempts from your address"
        )
    )
    # End this request's transaction (SQLite's write lock): the claim runs in its own.
    session.commit()
    db = request.app.state.db
    node = await anyio.to_thread.run_sync(
        lambda: claim_and_announce(
            db,
            user_id=user.id or 0,
            code=body.code,
            name=body.name,
            hooks=hooks,
            limiter=limiters["claim_user"],
        )
    )
    [public] = await anyio.to_thread.run_sync(lambda: describe(session, user, [node]))
    session.commit()
    return public


@router.get("/{node_id}")
def get_node(
    user: CurrentUser, session: SessionDep, hooks: HooksDep, node_id: IdPath
) -> NodePublic:
    """A node I own or may use."""
    [public] = describe(session, user, [visible_node(session, user, node_id, hooks)])
    return public


@router.patch("/{node_id}")
def update_node(
    user: CurrentUser, session: SessionDep, hooks: HooksDep, node_id: IdPath, body: NodeUpdate
) -> NodePublic:
    """Rename my node, change how many chunks it runs at once, or set its labels."""
    node = owned_node(session, user, node_id, hooks)
    if body.name is not None:
        if not body.name.strip():
            raise InvalidRequest("node name must be 1 to 100 characters", field="name")
        node.name = body.name.strip()
    if body.max_parallel is not None:
        node.max_parallel = body.max_parallel
    if body.labels is not None:
        update_capabilities(node, engines=None, labels=body.labels)
    session.add(node)
    session.commit()
    [public] = describe(session, user, [node])
    return public


def _grants_public(session: Session, grants: list[NodeAccess]) -> list[GrantPublic]:
    out = []
    for g in grants:
        name = None
        if g.access_type == AccessType.USER.value and g.target_id is not None:
            target = session.get(User, g.target_id)
            name = target.username if target else None
        elif g.access_type == AccessType.GUILD.value and g.target_id is not None:
            guild = session.get(Guild, g.target_id)
            name = guild.name if guild else None
        out.append(GrantPublic(access_type=g.access_type, target_id=g.target_id, target_name=name))
    return out


@router.get("/{node_id}/access")
def get_access(
    user: CurrentUser, session: SessionDep, hooks: HooksDep, node_id: IdPath
) -> list[GrantPublic]:
    """Who may use my node."""
    node = owned_node(session, user, node_id, hooks)
    return _grants_public(session, access.grants_of(session, node.id or 0))


@router.put("/{node_id}/access")
def set_access(
    user: CurrentUser, session: SessionDep, hooks: HooksDep, node_id: IdPath, body: AccessUpdate
) -> list[GrantPublic]:
    """Replace who may use my node: only me (no grants), users, friends, a guild, public."""
    node = owned_node(session, user, node_id, hooks)
    grants: list[tuple[AccessType | str, int | None]] = []
    for i, grant in enumerate(body.grants):
        target: int | None = None
        if grant.access_type == "user":
            if not grant.username:
                raise InvalidRequest("a user grant needs a username", field=f"grants.{i}.username")
            target = user_by_name(session, username=grant.username, field=f"grants.{i}.username").id
        elif grant.access_type == "guild":
            if (
                grant.guild_id is None
                or membership(session, guild_id=grant.guild_id, user=user) is None
            ):
                raise NotFound("share with a guild you are in", field=f"grants.{i}.guild_id")
            target = grant.guild_id
        grants.append((grant.access_type, target))
    rows = access.set_access(session, node=node, grants=grants)
    session.commit()
    return _grants_public(session, rows)


@router.delete("/{node_id}", status_code=204)
def remove_node(user: CurrentUser, session: SessionDep, hooks: HooksDep, node_id: IdPath) -> None:
    """Remove my node (its token stops working; chunk history stays)."""
    node = owned_node(session, user, node_id, hooks)
    session.delete(node)
    session.commit()
    hooks.node_removed(node_id=node_id, user=user)


__all__ = ["router"]
