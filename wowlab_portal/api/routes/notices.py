"""My notices: a node of mine was flagged, a job of mine met a wrong result."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from wowlab_core.notices import mark_read, notices_of
from wowlab_portal.api.deps import MAX_ID, CurrentUser, SessionDep
from wowlab_portal.api.errors import USER_ERRORS

router = APIRouter(prefix="/api/v1/notices", tags=["notices"], responses=USER_ERRORS)


class NoticePublic(BaseModel):
    """A message for me."""

    id: int
    kind: str
    message: str
    job_id: int | None
    node_id: int | None
    created_at: datetime
    read_at: datetime | None


class ReadRequest(BaseModel):
    """Which notices I have read (none given: all of them)."""

    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(default=None, max_length=1000)


class ReadReply(BaseModel):
    """How many notices were newly marked read."""

    marked: int


@router.get("")
def list_notices(
    user: CurrentUser, session: SessionDep, unread: bool = False
) -> list[NoticePublic]:
    """My newest notices (50)."""
    return [
        NoticePublic.model_validate(n, from_attributes=True)
        for n in notices_of(session, user=user, unread_only=unread)
    ]


@router.post("/read")
def read_notices(user: CurrentUser, session: SessionDep, body: ReadRequest) -> ReadReply:
    """Mark my notices read."""
    marked = mark_read(session, user=user, ids=body.ids)
    session.commit()
    return ReadReply(marked=marked)


__all__ = ["router"]
