"""My nodes, claiming a node, a node's page (rename, share, remove), available nodes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from wowlab_core.errors import NotFound, PermissionDenied, WowlabError
from wowlab_core.nodes import MAX_PARALLEL_LIMIT
from wowlab_core.notices import mark_read, notices_of
from wowlab_portal import social
from wowlab_portal.api.deps import HooksDep, IdPath, LimitersDep, SessionDep
from wowlab_portal.api.routes import nodes as api
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

router = APIRouter(prefix="/nodes", include_in_schema=False)
notices_router = APIRouter(prefix="/notices", include_in_schema=False)

ACCESS_MODES = {
    "me": "Only me",
    "users": "Chosen users",
    "friends": "My friends",
    "guild": "A guild",
    "public": "Everyone",
}


def portal_url(request: Request) -> str:
    """This portal's address as a node must dial it (behind a proxy: the address it was
    reached by)."""
    return str(request.base_url).rstrip("/")


@router.get("")
def my_nodes(request: Request, user: PageUser, session: SessionDep) -> Response:
    """My nodes, with status and current work."""
    return render(
        request,
        "nodes.html",
        user,
        nodes=api.my_nodes(user, session),
        notices=notices_of(session, user=user, unread_only=True),
        portal_url=portal_url(request),
    )


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
    code: Annotated[str, Form(max_length=32)] = "",
    name: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Claim the node and go to its page."""
    if not code.strip():
        return render(
            request, "claim.html", user, 422, code="", preview=None,
            errors={"code": "Enter the claim code the node prints."},
        )  # fmt: skip
    try:
        body = api.ClaimRequest(code=code, name=name.strip() or None)
        node = await api.claim(request, user, session, limiters, hooks, body)
    except (WowlabError, ValidationError) as exc:
        status = exc.status_code if isinstance(exc, WowlabError) else 422
        return render(
            request, "claim.html", user, status, code=code, preview=None,
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
    **sent: str,
) -> Response:
    node = api.get_node(user, session, hooks, node_id)
    grants = api.get_access(user, session, hooks, node_id) if node.mine else []
    kinds = {g.access_type for g in grants}
    mode = next(
        (m for m, kind in (("public", "public"), ("guild", "guild"), ("friends", "friends"),
                           ("users", "user")) if kind in kinds),
        "me",
    )  # fmt: skip
    # After a mistake the form shows what the user sent, not what is stored.
    form = {
        "name": node.name,
        "max_parallel": str(node.max_parallel),
        "labels": ", ".join(node.labels or []),
        "mode": mode,
        "usernames": ", ".join(g.target_name or "" for g in grants if g.access_type == "user"),
        "guild_id": next((str(g.target_id) for g in grants if g.access_type == "guild"), ""),
        **sent,
    }
    return render(
        request,
        "node.html",
        user,
        status_code,
        node=node,
        grants=grants,
        form=form,
        modes=ACCESS_MODES,
        guilds=social.user_guilds(session, user=user),
        max_parallel_limit=MAX_PARALLEL_LIMIT,
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
    name: Annotated[str, Form(max_length=200)] = "",
    max_parallel: Annotated[str, Form(max_length=10)] = "",
    labels: Annotated[str | None, Form(max_length=2200)] = None,
) -> Response:
    """Rename the node, change how many chunks it runs at once, or its labels."""
    sent = {"name": name, "max_parallel": max_parallel, "labels": labels or ""}
    errors = _settings_mistakes(name, max_parallel, labels or "")
    if not errors:
        try:
            body = api.NodeUpdate(
                name=name.strip(),
                max_parallel=int(max_parallel),
                labels=[x.strip() for x in labels.split(",") if x.strip()]
                if labels is not None
                else None,
            )
            api.update_node(user, session, hooks, node_id, body)
        except (WowlabError, ValidationError) as exc:
            session.rollback()
            if isinstance(exc, (PermissionDenied, NotFound)):
                raise  # not a form mistake: 403 / 404 like the API
            errors = field_errors(exc, "name")
    if errors:
        return _node_page(request, user, session, hooks, node_id, 422, errors, **sent)
    flash(request, "Saved.")
    return redirect(f"/nodes/{node_id}")


def _settings_mistakes(name: str, max_parallel: str, labels: str) -> dict[str, str]:
    """What is wrong with the settings form, by field (all of it at once)."""
    errors = {}
    count = len([x for x in labels.split(",") if x.strip()])
    limit = next(m.max_length for m in api.NodeUpdate.model_fields["labels"].metadata)
    if count > limit:
        errors["labels"] = f"At most {limit} labels, separated by commas (this is {count})."
    if not name.strip():
        errors["name"] = "Give the node a name."
    elif len(name.strip()) > 100:
        errors["name"] = "At most 100 characters."
    value = max_parallel.strip()
    if not value:
        errors["max_parallel"] = (
            "Say how many chunks it may run at once: "
            f"a whole number from 1 to {MAX_PARALLEL_LIMIT}."
        )
    elif not value.isdigit() or not 1 <= int(value) <= MAX_PARALLEL_LIMIT:
        errors["max_parallel"] = f"A whole number from 1 to {MAX_PARALLEL_LIMIT}."
    return errors


@router.post("/{node_id}/access", dependencies=[CsrfChecked])
def set_access(
    request: Request,
    user: PageUser,
    session: SessionDep,
    hooks: HooksDep,
    node_id: IdPath,
    mode: Annotated[str, Form(max_length=20)] = "",
    usernames: Annotated[str, Form(max_length=2000)] = "",
    guild_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Choose who may use the node."""
    grants: list[api.Grant] = []
    try:
        if mode == "users":
            names = [n.strip() for n in usernames.replace(",", " ").split() if n.strip()]
            if not names:
                raise WowlabError("Name at least one user.", field="usernames")
            grants = [api.Grant(access_type="user", username=n) for n in names]
        elif mode == "guild":
            if not guild_id.isdigit():
                raise WowlabError("Choose one of your guilds.", field="guild_id")
            grants = [api.Grant(access_type="guild", guild_id=int(guild_id))]
        elif mode in ("friends", "public"):
            grants = [api.Grant(access_type=mode)]  # type: ignore[arg-type]
        elif mode != "me":
            raise WowlabError("Choose who may use the node.", field="mode")
        api.set_access(user, session, hooks, node_id, api.AccessUpdate(grants=grants))
    except (WowlabError, ValidationError) as exc:
        session.rollback()
        if isinstance(exc, (PermissionDenied, NotFound)):
            raise  # not a form mistake: 403 / 404 like the API
        errors = field_errors(exc, "mode")
        if "grants" in errors:
            errors["usernames" if mode == "users" else "guild_id"] = errors.pop("grants")
        sent = {"mode": mode, "usernames": usernames, "guild_id": guild_id}
        return _node_page(request, user, session, hooks, node_id, 422, errors, **sent)
    flash(request, f"Access: {ACCESS_MODES[mode].lower()}.")
    return redirect(f"/nodes/{node_id}")


@router.post("/{node_id}/remove", dependencies=[CsrfChecked])
def remove_node(
    request: Request,
    user: PageUser,
    session: SessionDep,
    hooks: HooksDep,
    node_id: IdPath,
    confirmed: Confirmed = "",
) -> Response:
    """Remove the node (asked first)."""
    if confirmed != "yes":
        node = api.owned_node(session, user, node_id, hooks)  # 403 / 404 before asking
        return ask_first(
            request, user, question=f"Remove {node.name}?", action=f"/nodes/{node_id}/remove",
            button="Remove this node", back=f"/nodes/{node_id}",
        )  # fmt: skip
    api.remove_node(user, session, hooks, node_id)
    flash(request, "Node removed.")
    return redirect("/nodes")


@notices_router.post("/read", dependencies=[CsrfChecked])
def read_notices(request: Request, user: PageUser, session: SessionDep) -> Response:
    """Mark my notices read and go back where they were shown."""
    mark_read(session, user=user)
    session.commit()
    back = request.headers.get("referer", "")
    return redirect("/jobs" if back.endswith("/jobs") else "/nodes")


__all__ = ["notices_router", "router"]
