"""Guilds (create, invite, join, leave) and friends."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from wowlab_core.errors import WowlabError
from wowlab_portal.api.deps import IdPath, SessionDep
from wowlab_portal.api.routes import social as api
from wowlab_portal.web.forms import CsrfChecked, PageUser, field_errors, flash, redirect, render

router = APIRouter(include_in_schema=False)

Name = Annotated[str, Form(max_length=200)]


def _guilds_page(
    request: Request, user: PageUser, session: SessionDep, status_code: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    mine = api.list_guilds(user, session)
    details = [api.get_guild(user, session, g.id) for g in mine.guilds]
    return render(
        request, "guilds.html", user, status_code,
        guilds=details, invites=mine.invites, errors=errors or {},
    )  # fmt: skip


@router.get("/guilds")
def guilds(request: Request, user: PageUser, session: SessionDep) -> Response:
    """My guilds, their members, and invitations."""
    return _guilds_page(request, user, session)


@router.post("/guilds", dependencies=[CsrfChecked])
def create_guild(request: Request, user: PageUser, session: SessionDep, name: Name) -> Response:
    """Found a guild."""
    try:
        api.create_guild(user, session, api.GuildCreate(name=name))
    except (WowlabError, ValidationError) as exc:
        session.rollback()
        return _guilds_page(request, user, session, 422, field_errors(exc, "name"))
    flash(request, f"Guild {name} founded.")
    return redirect("/guilds")


@router.post("/guilds/{guild_id}/invites", dependencies=[CsrfChecked])
def invite(
    request: Request, user: PageUser, session: SessionDep, guild_id: IdPath, username: Name
) -> Response:
    """Invite a user to the guild."""
    try:
        api.invite(user, session, guild_id, api.UsernameBody(username=username))
    except (WowlabError, ValidationError) as exc:
        session.rollback()
        errors = {f"invite-{guild_id}": next(iter(field_errors(exc, "username").values()))}
        return _guilds_page(request, user, session, 422, errors)
    flash(request, f"{username} is invited.")
    return redirect("/guilds")


@router.post("/guilds/{guild_id}/join", dependencies=[CsrfChecked])
def join(request: Request, user: PageUser, session: SessionDep, guild_id: IdPath) -> Response:
    """Accept an invitation."""
    guild = api.join(user, session, guild_id)
    flash(request, f"You joined {guild.name}.")
    return redirect("/guilds")


@router.post("/guilds/{guild_id}/leave", dependencies=[CsrfChecked])
def leave(request: Request, user: PageUser, session: SessionDep, guild_id: IdPath) -> Response:
    """Leave a guild."""
    api.leave(user, session, guild_id)
    flash(request, "You left the guild.")
    return redirect("/guilds")


def _friends_page(
    request: Request, user: PageUser, session: SessionDep, status_code: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    return render(
        request, "friends.html", user, status_code,
        friends=api.list_friends(user, session), errors=errors or {},
    )  # fmt: skip


@router.get("/friends")
def friends(request: Request, user: PageUser, session: SessionDep) -> Response:
    """My friends and friend requests."""
    return _friends_page(request, user, session)


@router.post("/friends", dependencies=[CsrfChecked])
def request_friend(
    request: Request, user: PageUser, session: SessionDep, username: Name
) -> Response:
    """Ask a user to be friends."""
    try:
        api.request_friend(user, session, api.UsernameBody(username=username))
    except (WowlabError, ValidationError) as exc:
        session.rollback()
        return _friends_page(request, user, session, 422, field_errors(exc, "username"))
    flash(request, f"Friend request sent to {username}.")
    return redirect("/friends")


@router.post("/friends/{username}/accept", dependencies=[CsrfChecked])
def accept_friend(request: Request, user: PageUser, session: SessionDep, username: str) -> Response:
    """Accept a friend request."""
    api.accept_friend(user, session, username[:64])
    return redirect("/friends")


@router.post("/friends/{username}/remove", dependencies=[CsrfChecked])
def remove_friend(request: Request, user: PageUser, session: SessionDep, username: str) -> Response:
    """Unfriend, or withdraw or decline a request."""
    api.remove_friend(user, session, username[:64])
    return redirect("/friends")


__all__ = ["router"]
