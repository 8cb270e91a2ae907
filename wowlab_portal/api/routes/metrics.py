"""``GET /metrics``: Prometheus scrape of nodes, jobs, chunks and lease latency.

With ``WOWLAB_METRICS_TOKEN`` set, a scrape needs ``Authorization: Bearer <token>``
(Prometheus: ``authorization: {credentials: ...}`` in the scrape config).
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from wowlab_core.errors import AuthenticationFailed
from wowlab_portal.api.deps import SessionDep, SettingsDep
from wowlab_portal.api.errors import error_responses
from wowlab_portal.metrics import exposition

router = APIRouter(tags=["health"])

metrics_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="MetricsToken",
    description="`WOWLAB_METRICS_TOKEN`, when the portal sets one.",
)


def check_metrics_token(
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(metrics_bearer)],
) -> None:
    """Refuse a scrape without the metrics token, when one is set."""
    expected = settings.metrics_token
    if expected is None:
        return
    given = bearer.credentials if bearer is not None else ""
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise AuthenticationFailed(
            "send the metrics token: 'Authorization: Bearer <WOWLAB_METRICS_TOKEN>'",
            field="Authorization",
        )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    dependencies=[Depends(check_metrics_token)],
    responses=error_responses(401),
)
def metrics(request: Request, session: SessionDep) -> PlainTextResponse:
    """Counts by status and the lease latency histogram, in Prometheus text format."""
    text = exposition(session, lease_latency=request.app.state.lease_latency)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


__all__ = ["router"]
