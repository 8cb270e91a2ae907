"""Guilds (create, invite by username, join, leave, members) and friends."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from wowlab_core.models import Guild
from wowlab_portal import social
from wowlab_portal.accounts import user_by_name
from wowlab_portal.api.deps import CurrentUser, IdPath, SessionDep
from wowlab_portal.api.errors import USER_ERRORS

router = APIRouter(prefix="/api/v1", tags=["guilds and friends"], responses=USER_ERRORS)

Username = Annotated[str, Path(min_length=1, max_length=64)]


class GuildCreate(BaseModel):
    """A new guild's name."""

    name: str = Field(max_length=100)


class GuildPublic(BaseModel):
    """A guild and my role in it (``invited`` for an open invitation)."""

    id: int
    name: str
    role: str


class Member(BaseModel):
    """A guild member."""

    user_id: int
    username: str
    role: str


class GuildDetail(GuildPublic):
    """A guild with its members."""

    members: list[Member]


class MyGuilds(BaseModel):
    """Guilds I am in, and guilds that invited me."""

    guilds: list[GuildPublic]
    invites: list[GuildPublic]


class UsernameBody(BaseModel):
    """Another user, by name."""

    username: str = Field(max_length=64)


class Friend(BaseModel):
    """A friend or a friend request."""

    user_id: int
    username: str
    status: str  # accepted, incoming (they asked), outgoing (I asked)
    since: datetime


def _guild(guild: Guild, role: str) -> GuildPublic:
    return GuildPublic(id=guild.id or 0, name=guild.name, role=role)


def _detail(session: SessionDep, guild: Guild, role: str) -> GuildDetail:
    members = [
        Member(user_id=u.id or 0, username=u.username, role=r)
        for u, r in social.guild_members(session, guild=guild)
    ]
    return GuildDetail(**_guild(guild, role).model_dump(), members=members)


@router.get("/guilds")
def list_guilds(user: CurrentUser, session: SessionDep) -> MyGuilds:
    """My guilds and my open invitations."""
    return MyGuilds(
        guilds=[_guild(g, r) for g, r in social.user_guilds(session, user=user)],
        invites=[_guild(g, "invited") for g, _ in social.pending_invites(session, user=user)],
    )


@router.post("/guilds", status_code=201)
def create_guild(user: CurrentUser, session: SessionDep, body: GuildCreate) -> GuildDetail:
    """Found a guild; I am its owner."""
    guild = social.create_guild(session, user=user, name=body.name)
    session.commit()
    return _detail(session, guild, social.OWNER)


@router.get("/guilds/{guild_id}")
def get_guild(user: CurrentUser, session: SessionDep, guild_id: IdPath) -> GuildDetail:
    """A guild I am in, with its members."""
    guild = social.guild_for_member(session, guild_id=guild_id, user=user)
    own = social.membership(session, guild_id=guild_id, user=user)
    return _detail(session, guild, own.role if own else social.MEMBER)


@router.post("/guilds/{guild_id}/invites", status_code=201)
def invite(
    user: CurrentUser, session: SessionDep, guild_id: IdPath, body: UsernameBody
) -> GuildPublic:
    """Invite a user by name (owner only)."""
    guild = social.guild_for_member(session, guild_id=guild_id, user=user)
    invitee = user_by_name(session, username=body.username)
    social.invite(session, guild=guild, by=user, invitee=invitee)
    session.commit()
    return _guild(guild, "invited")


@router.post("/guilds/{guild_id}/join")
def join(user: CurrentUser, session: SessionDep, guild_id: IdPath) -> GuildDetail:
    """Accept an invitation."""
    guild = social.join(session, guild_id=guild_id, user=user)
    session.commit()
    return _detail(session, guild, social.MEMBER)


@router.post("/guilds/{guild_id}/leave", status_code=204)
def leave(user: CurrentUser, session: SessionDep, guild_id: IdPath) -> None:
    """Leave a guild (an owner hands it to the oldest member)."""
    social.leave(session, guild_id=guild_id, user=user)
    session.commit()


@router.get("/friends")
def list_friends(user: CurrentUser, session: SessionDep) -> list[Friend]:
    """My friends and open friend requests."""
    out = []
    for row, other in social.friendships(session, user=user):
        status = (
            "accepted"
            if row.status == "accepted"
            else ("outgoing" if row.requester_id == user.id else "incoming")
        )
        out.append(
            Friend(
                user_id=other.id or 0, username=other.username, status=status, since=row.created_at
            )
        )
    return out


@router.post("/friends", status_code=201)
def request_friend(user: CurrentUser, session: SessionDep, body: UsernameBody) -> Friend:
    """Ask a user to be friends (accepts if they asked me already)."""
    other = user_by_name(session, username=body.username)
    row = social.request_friend(session, user=user, other=other)
    session.commit()
    status = "accepted" if row.status == "accepted" else "outgoing"
    return Friend(
        user_id=other.id or 0, username=other.username, status=status, since=row.created_at
    )


@router.post("/friends/{username}/accept")
def accept_friend(user: CurrentUser, session: SessionDep, username: Username) -> Friend:
    """Accept a friend request."""
    other = user_by_name(session, username=username)
    row = social.accept_friend(session, user=user, other=other)
    session.commit()
    return Friend(
        user_id=other.id or 0, username=other.username, status="accepted", since=row.created_at
    )


@router.delete("/friends/{username}", status_code=204)
def remove_friend(user: CurrentUser, session: SessionDep, username: Username) -> None:
    """Unfriend, or withdraw or decline a request."""
    other = user_by_name(session, username=username)
    social.remove_friend(session, user=user, other=other)
    session.commit()


__all__ = ["router"]
