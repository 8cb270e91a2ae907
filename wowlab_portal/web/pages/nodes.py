"""My nodes, claiming a node, a node's page (rename, share, remove), available nodes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from wowlab_core.errors import NotFound, PermissionDenied, WowlabError
from wowlab_portal import social
from wowlab_portal.api.deps import HooksDep, IdPath, LimitersDep, SessionDep
from wowlab_portal.api.routes import nodes as api
from wowlab_portal.web.forms import (
    CsrfChecked,
    PageUser,
    field_errors,
    flash,
    redirect,
    render,
)

router = APIRouter(prefix="/nodes", include_in_schema=False)

ACCESS_MODES = {
    "me": "Only me",
    "users": "Chosen users",
    "friends": "My friends",
    "guild": "A guild",
    "public": "Everyone",
}


@router.get("")
def my_nodes(request: Request, user: PageUser, session: SessionDep) -> Response:
    """My nodes, with status and current work."""
    return render(request, "nodes.html", user, nodes=api.my_nodes(user, session))


@router.get("/available")
def available(request: Request, user: PageUser, session: SessionDep, hooks: HooksDep) -> Response:
    """Others' nodes shared with me, and the capacity I can use now."""
    shared = api.available_nodes(user, session, hooks)
    return render(request, "available.html", user, available=shared)


@router.get("/claim")
def claim_page(
    request: Request, user: PageUser, session: SessionDep, limiters: LimitersDep, code: str = ""
) -> Response:
    """Enter a claim code; with a code, preview the node before confirming."""
    if not code.strip():
        return render(request, "claim.html", user, code="", preview=None)
    try:
        preview = api.preview_claim(request, user, session, limiters, code.strip()[:32])
    except WowlabError as exc:
        return render(
            request, "claim.html", user, exc.status_code, code=code, preview=None,
            errors={"code": exc.message},
        )  # fmt: skip
    return render(request, "claim.html", user, code=preview.code, preview=preview)


@router.post("/claim", dependencies=[CsrfChecked])
async def claim(
    request: Request,
    user: PageUser,
    session: SessionDep,
    limiters: LimitersDep,
    hooks: HooksDep,
    code: Annotated[str, Form(max_length=32)],
    name: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Claim the node and go to its page."""
    try:
        body = api.ClaimRequest(code=code, name=name.strip() or None)
        node = await api.claim(request, user, session, limiters, hooks, body)
    except (WowlabError, ValidationError) as exc:
        return render(
            request, "claim.html", user, 422, code=code, preview=None,
            errors=field_errors(exc, "code"),
        )  # fmt: skip
    flash(request, f"{node.name} is yours now.")
    return redirect(f"/nodes/{node.id}")


def _node_page(
    request: Request,
    user: PageUser,
    session: SessionDep,
    hooks: HooksDep,
    node_id: int,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:
    node = api.get_node(user, session, hooks, node_id)
    grants = api.get_access(user, session, hooks, node_id) if node.mine else []
    kinds = {g.access_type for g in grants}
    mode = next(
        (m for m, kind in (("public", "public"), ("guild", "guild"), ("friends", "friends"),
                           ("users", "user")) if kind in kinds),
        "me",
    )  # fmt: skip
    return render(
        request,
        "node.html",
        user,
        status_code,
        node=node,
        grants=grants,
        mode=mode,
        modes=ACCESS_MODES,
        usernames=", ".join(g.target_name or "" for g in grants if g.access_type == "user"),
        guild_ids={g.target_id for g in grants if g.access_type == "guild"},
        guilds=social.user_guilds(session, user=user),
        errors=errors or {},
    )


@router.get("/{node_id}")
def node_page(
    request: Request, user: PageUser, session: SessionDep, hooks: HooksDep, node_id: IdPath
) -> Response:
    """A node: its figures, and for its owner the settings."""
    return _node_page(request, user, session, hooks, node_id)


@router.post("/{node_id}", dependencies=[CsrfChecked])
def update_node(
    request: Request,
    user: PageUser,
    session: SessionDep,
    hooks: HooksDep,
    node_id: IdPath,
    name: Annotated[str, Form(max_length=200)],
    max_parallel: Annotated[str, Form(max_length=10)],
) -> Response:
    """Rename the node or change how many chunks it runs at once."""
    try:
        body = api.NodeUpdate(name=name, max_parallel=max_parallel)  # type: ignore[arg-type]
        api.update_node(user, session, hooks, node_id, body)
    except (WowlabError, ValidationError) as exc:
        session.rollback()
        if isinstance(exc, (PermissionDenied, NotFound)):
            raise  # not a form mistake: 403 / 404 like the API
        return _node_page(request, user, session, hooks, node_id, 422, field_errors(exc, "name"))
    flash(request, "Saved.")
    return redirect(f"/nodes/{node_id}")


@router.post("/{node_id}/access", dependencies=[CsrfChecked])
def set_access(
    request: Request,
    user: PageUser,
    session: SessionDep,
    hooks: HooksDep,
    node_id: IdPath,
    mode: Annotated[str, Form(max_length=20)],
    usernames: Annotated[str, Form(max_length=2000)] = "",
    guild_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Choose who may use the node."""
    grants: list[api.Grant] = []
    try:
        if mode == "users":
            names = [n.strip() for n in usernames.replace(",", " ").split() if n.strip()]
            if not names:
                raise WowlabError("name at least one user", field="usernames")
            grants = [api.Grant(access_type="user", username=n) for n in names]
        elif mode == "guild":
            if not guild_id.isdigit():
                raise WowlabError("choose one of your guilds", field="guild_id")
            grants = [api.Grant(access_type="guild", guild_id=int(guild_id))]
        elif mode in ("friends", "public"):
            grants = [api.Grant(access_type=mode)]  # type: ignore[arg-type]
        elif mode != "me":
            raise WowlabError("choose who may use the node", field="mode")
        api.set_access(user, session, hooks, node_id, api.AccessUpdate(grants=grants))
    except (WowlabError, ValidationError) as exc:
        session.rollback()
        if isinstance(exc, (PermissionDenied, NotFound)):
            raise  # not a form mistake: 403 / 404 like the API
        errors = field_errors(exc, "mode")
        if "grants" in errors:
            errors["usernames" if mode == "users" else "guild_id"] = errors.pop("grants")
        return _node_page(request, user, session, hooks, node_id, 422, errors)
    flash(request, f"Access: {ACCESS_MODES[mode].lower()}.")
    return redirect(f"/nodes/{node_id}")


@router.post("/{node_id}/remove", dependencies=[CsrfChecked])
def remove_node(
    request: Request, user: PageUser, session: SessionDep, hooks: HooksDep, node_id: IdPath
) -> Response:
    """Remove the node."""
    api.remove_node(user, session, hooks, node_id)
    flash(request, "Node removed.")
    return redirect("/nodes")


__all__ = ["router"]
