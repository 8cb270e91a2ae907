"""Dependencies of the routes, as ``Annotated`` aliases (``CoordinatorDep``, ``NodeDep``, ...)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from wowlab_core.coordinator import Coordinator
from wowlab_core.errors import AuthenticationFailed
from wowlab_core.http_client import NODE_HEADER
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import NodeCredentials
from wowlab_portal.long_poll import ClaimSignal, RecentNodes, WorkBroadcast
from wowlab_portal.settings import PortalSettings

# Node ids are positive 64-bit integers.
_NODE_ID = re.compile(r"[0-9]{1,18}")

node_token = HTTPBearer(
    auto_error=False,
    scheme_name="NodeToken",
    description="The node's secret token from its registration: `Authorization: Bearer <token>`.",
)
node_id_header = APIKeyHeader(
    name=NODE_HEADER,
    auto_error=False,
    scheme_name="NodeId",
    description=f"The node's id from its registration: `{NODE_HEADER}: <node id>`.",
)


def get_settings(request: Request) -> PortalSettings:
    """The portal's settings."""
    settings: PortalSettings = request.app.state.settings
    return settings


def get_hooks(request: Request) -> Hooks:
    """The portal's plugin hooks."""
    hooks: Hooks = request.app.state.hooks
    return hooks


def get_coordinator(request: Request) -> Coordinator:
    """The portal's coordinator."""
    coordinator: Coordinator = request.app.state.coordinator
    return coordinator


def get_work(request: Request) -> WorkBroadcast:
    """Wake-ups for nodes waiting for work."""
    work: WorkBroadcast = request.app.state.work
    return work


def get_claims(request: Request) -> ClaimSignal:
    """Wake-ups for nodes waiting to be claimed."""
    claims: ClaimSignal = request.app.state.claims
    return claims


def get_recent_nodes(request: Request) -> RecentNodes:
    """Credentials the coordinator accepted lately."""
    recent: RecentNodes = request.app.state.recent_nodes
    return recent


def node_credentials(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(node_token)],
    node_id: Annotated[str | None, Depends(node_id_header)],
) -> NodeCredentials:
    """The calling node's credentials, from ``Authorization`` and ``X-Wowlab-Node``.

    Only their form is checked here: the coordinator call the route makes checks the
    token against the database in its own transaction (one round trip, not two).
    """
    if bearer is None or not bearer.credentials:
        raise AuthenticationFailed(
            "missing node token: send 'Authorization: Bearer <token>'", field="Authorization"
        )
    if node_id is None or not _NODE_ID.fullmatch(node_id.strip()):
        raise AuthenticationFailed(
            f"missing or malformed node id: send '{NODE_HEADER}: <node id>'", field=NODE_HEADER
        )
    return NodeCredentials(node_id=int(node_id), token=bearer.credentials)


SettingsDep = Annotated[PortalSettings, Depends(get_settings)]
HooksDep = Annotated[Hooks, Depends(get_hooks)]
CoordinatorDep = Annotated[Coordinator, Depends(get_coordinator)]
WorkDep = Annotated[WorkBroadcast, Depends(get_work)]
ClaimsDep = Annotated[ClaimSignal, Depends(get_claims)]
RecentNodesDep = Annotated[RecentNodes, Depends(get_recent_nodes)]
#: The calling node: its credentials, authenticated by the coordinator call that uses them.
NodeDep = Annotated[NodeCredentials, Depends(node_credentials)]

__all__ = [
    "ClaimsDep",
    "CoordinatorDep",
    "HooksDep",
    "NodeDep",
    "RecentNodesDep",
    "SettingsDep",
    "WorkDep",
]
