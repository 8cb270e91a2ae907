"""Messages for users: a node of theirs was flagged, a job of theirs met a wrong result."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from wowlab_core.db import rowcount
from wowlab_core.models import Notice, User, utcnow


def notices_of(
    session: Session, *, user: User, unread_only: bool = False, limit: int = 50
) -> list[Notice]:
    """A user's newest notices."""
    stmt = select(Notice).where(col(Notice.user_id) == user.id)
    if unread_only:
        stmt = stmt.where(col(Notice.read_at).is_(None))
    return list(session.exec(stmt.order_by(col(Notice.id).desc()).limit(limit)).all())


def mark_read(
    session: Session, *, user: User, ids: Sequence[int] | None = None, now: datetime | None = None
) -> int:
    """Mark notices (all of them without ``ids``) read; only the user's own. Does not commit."""
    stmt = sa.update(Notice).where(col(Notice.user_id) == user.id, col(Notice.read_at).is_(None))
    if ids is not None:
        stmt = stmt.where(col(Notice.id).in_(list(ids)))
    result = session.execute(stmt.values(read_at=now or utcnow()))
    return rowcount(result)


__all__ = ["mark_read", "notices_of"]
