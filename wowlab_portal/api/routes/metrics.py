"""``GET /metrics``: Prometheus scrape of nodes, jobs, chunks and lease latency."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from wowlab_portal.api.deps import SessionDep
from wowlab_portal.metrics import exposition

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request, session: SessionDep) -> PlainTextResponse:
    """Counts by status and the lease latency histogram, in Prometheus text format."""
    text = exposition(session, lease_latency=request.app.state.lease_latency)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


__all__ = ["router"]
