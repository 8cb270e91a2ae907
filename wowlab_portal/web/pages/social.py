"""Guilds (create, invite, join, leave) and friends."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from wowlab_core.errors import NotFound, WowlabError
from wowlab_portal.api.deps import IdPath, SessionDep
from wowlab_portal.api.routes import social as api
from wowlab_portal.web.forms import (
    Confirmed,
    CsrfChecked,
    PageUser,
    ask_first,
    field_errors,
    flash,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False)

Name = Annotated[str, Form(max_length=200)]
#: The confirmation of each way of ending a friendship (the friends page asks the same).
_FRIEND_QUESTIONS = {
    "Remove": "Remove {name} from your friends?",
    "Decline": "Decline {name}'s friend request?",
    "Withdraw": "Withdraw your friend request to {name}?",
}


def _named(name: str, field: str, what: str) -> dict[str, str]:
    """The form's mistake when a name was left empty (browsers check it too)."""
    return {} if name.strip() else {field: what}


def _guilds_page(
    request: Request, user: PageUser, session: SessionDep, status_code: int = 200,
    errors: dict[str, str] | None = None, **sent: str,
) -> Response:  # fmt: skip
    mine = api.list_guilds(user, session)
    details = [api.get_guild(user, session, g.id) for g in mine.guilds]
    return render(
        request, "guilds.html", user, status_code,
        guilds=details, invites=mine.invites, errors=errors or {}, **sent,
    )  # fmt: skip


@router.get("/guilds")
def guilds(request: Request, user: PageUser, session: SessionDep) -> Response:
    """My guilds, their members, and invitations."""
    return _guilds_page(request, user, session)


@router.post("/guilds", dependencies=[CsrfChecked])
def create_guild(
    request: Request, user: PageUser, session: SessionDep, name: Name = ""
) -> Response:
    """Found a guild."""
    if errors := _named(name, "name", "Give the guild a name."):
        return _guilds_page(request, user, session, 422, errors, name=name)
    try:
        api.create_guild(user, session, api.GuildCreate(name=name))
    except (WowlabError, ValidationError) as exc:
        session.rollback()
        return _guilds_page(request, user, session, 422, field_errors(exc, "name"), name=name)
    flash(request, f"Guild {name} founded.")
    return redirect("/guilds")


@router.post("/guilds/{guild_id}/invites", dependencies=[CsrfChecked])
def invite(
    request: Request, user: PageUser, session: SessionDep, guild_id: IdPath, username: Name = ""
) -> Response:
    """Invite a user to the guild."""
    field = f"invite-{guild_id}"
    errors = _named(username, field, "Name the user to invite.")
    if not errors:
        try:
            api.invite(user, session, guild_id, api.UsernameBody(username=username))
        except (WowlabError, ValidationError) as exc:
            session.rollback()
            errors = {field: "; ".join(field_errors(exc, "username").values())}
    if errors:
        return _guilds_page(request, user, session, 422, errors, invite_username=username)
    flash(request, f"{username} is invited.")
    return redirect("/guilds")


@router.post("/guilds/{guild_id}/join", dependencies=[CsrfChecked])
def join(request: Request, user: PageUser, session: SessionDep, guild_id: IdPath) -> Response:
    """Accept an invitation."""
    guild = api.join(user, session, guild_id)
    flash(request, f"You joined {guild.name}.")
    return redirect("/guilds")


@router.post("/guilds/{guild_id}/leave", dependencies=[CsrfChecked])
def leave(
    request: Request, user: PageUser, session: SessionDep, guild_id: IdPath,
    confirmed: Confirmed = "",
) -> Response:  # fmt: skip
    """Leave a guild (asked first)."""
    if confirmed != "yes":
        guild = api.get_guild(user, session, guild_id)  # 404 for a guild I am not in
        return ask_first(
            request, user, question=f"Leave {guild.name}?", action=f"/guilds/{guild_id}/leave",
            button=f"Leave {guild.name}", back="/guilds",
        )  # fmt: skip
    api.leave(user, session, guild_id)
    flash(request, "You left the guild.")
    return redirect("/guilds")


def _friends_page(
    request: Request, user: PageUser, session: SessionDep, status_code: int = 200,
    errors: dict[str, str] | None = None, **sent: str,
) -> Response:  # fmt: skip
    return render(
        request, "friends.html", user, status_code,
        friends=api.list_friends(user, session), errors=errors or {}, **sent,
    )  # fmt: skip


@router.get("/friends")
def friends(request: Request, user: PageUser, session: SessionDep) -> Response:
    """My friends and friend requests."""
    return _friends_page(request, user, session)


@router.post("/friends", dependencies=[CsrfChecked])
def request_friend(
    request: Request, user: PageUser, session: SessionDep, username: Name = ""
) -> Response:
    """Ask a user to be friends."""
    if errors := _named(username, "username", "Name the user to ask."):
        return _friends_page(request, user, session, 422, errors, username=username)
    try:
        api.request_friend(user, session, api.UsernameBody(username=username))
    except (WowlabError, ValidationError) as exc:
        session.rollback()
        errors = field_errors(exc, "username")
        return _friends_page(request, user, session, 422, errors, username=username)
    flash(request, f"Friend request sent to {username}.")
    return redirect("/friends")


@router.post("/friends/{username}/accept", dependencies=[CsrfChecked])
def accept_friend(request: Request, user: PageUser, session: SessionDep, username: str) -> Response:
    """Accept a friend request."""
    api.accept_friend(user, session, username[:64])
    return redirect("/friends")


@router.post("/friends/{username}/remove", dependencies=[CsrfChecked])
def remove_friend(
    request: Request, user: PageUser, session: SessionDep, username: str,
    confirmed: Confirmed = "",
) -> Response:  # fmt: skip
    """Unfriend, or withdraw or decline a request (asked first)."""
    if confirmed != "yes":
        found = [f for f in api.list_friends(user, session) if f.username == username[:64]]
        if not found:
            raise NotFound(f"no friend or request with {username[:64]!r}")
        verb = {"accepted": "Remove", "incoming": "Decline"}.get(found[0].status, "Withdraw")
        return ask_first(
            request, user, question=_FRIEND_QUESTIONS[verb].format(name=found[0].username),
            action=f"/friends/{found[0].username}/remove", button=verb, back="/friends",
        )  # fmt: skip
    api.remove_friend(user, session, username[:64])
    return redirect("/friends")


__all__ = ["router"]
