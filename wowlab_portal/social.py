"""Guilds (owner and members, join by invitation) and friendships (request, accept).

They matter for sharing: a node shared with ``friends`` or a ``guild`` is usable by the
owner's accepted friends or that guild's members (see :mod:`wowlab_core.access`).
Functions take the caller's session and do not commit.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from wowlab_core.errors import InvalidRequest, NotFound, PermissionDenied
from wowlab_core.models import Friendship, Guild, GuildInvite, GuildMember, User

OWNER = "owner"
MEMBER = "member"


# --- guilds ---------------------------------------------------------------------------


def membership(session: Session, *, guild_id: int, user: User) -> GuildMember | None:
    """The user's membership of the guild, or None."""
    return session.get(GuildMember, (guild_id, user.id))


def guild_for_member(session: Session, *, guild_id: int, user: User) -> Guild:
    """The guild, if ``user`` is a member; else :class:`NotFound` (its existence is private)."""
    guild = session.get(Guild, guild_id)
    if guild is None or membership(session, guild_id=guild_id, user=user) is None:
        raise NotFound(f"you are not in a guild with id {guild_id}", field="guild_id")
    return guild


def create_guild(session: Session, *, user: User, name: str) -> Guild:
    """A new guild with ``user`` as its owner."""
    name = name.strip() if isinstance(name, str) else ""
    if not 2 <= len(name) <= 100:
        raise InvalidRequest("a guild name is 2 to 100 characters", field="name")
    taken = session.exec(
        select(Guild.id).where(sa.func.lower(col(Guild.name)) == name.lower())
    ).first()
    if taken is not None:
        raise InvalidRequest(f"the guild name {name!r} is taken", field="name")
    guild = Guild(name=name, owner_id=user.id)
    session.add(guild)
    session.flush()
    session.add(GuildMember(guild_id=guild.id or 0, user_id=user.id or 0, role=OWNER))
    session.flush()
    return guild


def user_guilds(session: Session, *, user: User) -> list[tuple[Guild, str]]:
    """The guilds ``user`` is in, with their role."""
    rows = session.exec(
        select(Guild, GuildMember.role)
        .join(GuildMember, col(GuildMember.guild_id) == Guild.id)
        .where(col(GuildMember.user_id) == user.id)
        .order_by(col(Guild.id))
    ).all()
    return [(g, r) for g, r in rows]


def guild_members(session: Session, *, guild: Guild) -> list[tuple[User, str]]:
    """The members of a guild with their role, owner first."""
    rows = session.exec(
        select(User, GuildMember.role)
        .join(GuildMember, col(GuildMember.user_id) == User.id)
        .where(col(GuildMember.guild_id) == guild.id)
        .order_by(col(GuildMember.role).desc(), col(User.username))
    ).all()
    return [(u, r) for u, r in rows]


def invite(session: Session, *, guild: Guild, by: User, invitee: User) -> GuildInvite:
    """Invite ``invitee`` (only the owner invites). Idempotent."""
    own = membership(session, guild_id=guild.id or 0, user=by)
    if own is None or own.role != OWNER:
        raise PermissionDenied("only the guild's owner may invite")
    if membership(session, guild_id=guild.id or 0, user=invitee) is not None:
        raise InvalidRequest(f"{invitee.username} is in the guild already", field="username")
    existing = session.get(GuildInvite, (guild.id, invitee.id))
    if existing is not None:
        return existing
    row = GuildInvite(guild_id=guild.id or 0, user_id=invitee.id or 0, invited_by=by.id)
    session.add(row)
    session.flush()
    return row


def pending_invites(session: Session, *, user: User) -> list[tuple[Guild, GuildInvite]]:
    """The guilds that invited ``user``."""
    rows = session.exec(
        select(Guild, GuildInvite)
        .join(GuildInvite, col(GuildInvite.guild_id) == Guild.id)
        .where(col(GuildInvite.user_id) == user.id)
        .order_by(col(Guild.id))
    ).all()
    return [(g, i) for g, i in rows]


def join(session: Session, *, guild_id: int, user: User) -> Guild:
    """Accept an invitation: ``user`` becomes a member."""
    guild = session.get(Guild, guild_id)
    row = session.get(GuildInvite, (guild_id, user.id))
    if guild is None or row is None:
        raise NotFound(f"you have no invitation to a guild with id {guild_id}", field="guild_id")
    session.delete(row)
    session.add(GuildMember(guild_id=guild_id, user_id=user.id or 0, role=MEMBER))
    session.flush()
    return guild


def leave(session: Session, *, guild_id: int, user: User) -> None:
    """Leave a guild. An owner hands the guild to its oldest member; the last one ends it."""
    guild = guild_for_member(session, guild_id=guild_id, user=user)
    own = membership(session, guild_id=guild_id, user=user)
    assert own is not None
    session.delete(own)
    session.flush()
    if own.role != OWNER:
        return
    heir = session.exec(
        select(GuildMember)
        .where(col(GuildMember.guild_id) == guild_id)
        .order_by(col(GuildMember.created_at), col(GuildMember.user_id))
    ).first()
    if heir is None:
        session.delete(guild)
        return
    heir.role = OWNER
    guild.owner_id = heir.user_id
    session.add_all([heir, guild])


# --- friends --------------------------------------------------------------------------


def _pair(session: Session, a: User, b: User) -> Friendship | None:
    return session.exec(
        select(Friendship).where(
            sa.or_(
                sa.and_(col(Friendship.requester_id) == a.id, col(Friendship.addressee_id) == b.id),
                sa.and_(col(Friendship.requester_id) == b.id, col(Friendship.addressee_id) == a.id),
            )
        )
    ).first()


def request_friend(session: Session, *, user: User, other: User) -> Friendship:
    """Ask ``other`` to be friends; if they asked ``user`` already, this accepts."""
    if other.id == user.id:
        raise InvalidRequest("you cannot befriend yourself", field="username")
    row = _pair(session, user, other)
    if row is None:
        row = Friendship(requester_id=user.id or 0, addressee_id=other.id or 0)
    elif row.status == "pending" and row.addressee_id == user.id:
        row.status = "accepted"
    session.add(row)
    session.flush()
    return row


def accept_friend(session: Session, *, user: User, other: User) -> Friendship:
    """Accept ``other``'s request."""
    row = _pair(session, user, other)
    if row is None or row.addressee_id != user.id:
        raise NotFound(f"{other.username} has not asked to be your friend", field="username")
    row.status = "accepted"
    session.add(row)
    return row


def remove_friend(session: Session, *, user: User, other: User) -> None:
    """End a friendship, or withdraw / decline a request."""
    row = _pair(session, user, other)
    if row is None:
        raise NotFound(f"{other.username} is not your friend", field="username")
    session.delete(row)


def friendships(session: Session, *, user: User) -> list[tuple[Friendship, User]]:
    """Every friendship and request of ``user``, with the other person."""
    rows = session.exec(
        select(Friendship, User)
        .join(
            User,
            sa.or_(
                sa.and_(
                    col(Friendship.requester_id) == user.id, col(User.id) == Friendship.addressee_id
                ),
                sa.and_(
                    col(Friendship.addressee_id) == user.id, col(User.id) == Friendship.requester_id
                ),
            ),
        )
        .order_by(col(User.username))
    ).all()
    return [(f, u) for f, u in rows]


__all__ = [
    "accept_friend",
    "create_guild",
    "friendships",
    "guild_for_member",
    "guild_members",
    "invite",
    "join",
    "leave",
    "membership",
    "pending_invites",
    "remove_friend",
    "request_friend",
    "user_guilds",
]
