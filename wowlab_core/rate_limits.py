"""Rate limits that hold across processes: counted in the database.

:class:`~wowlab_core.claim_codes.RateLimiter` counts in one process's memory: with several
portal workers (or bridges) each would allow its own ``limit``. A
:class:`DatabaseRateLimiter` counts in ``rate_limit_hits``, so every process sharing the
database shares the limit. The window slides exactly as the in-memory one does: an
attempt is refused while ``limit`` attempts were counted within the last
``window_seconds``.

On PostgreSQL, attempts on one key are serialised by a transaction-scoped advisory lock
(two workers cannot both see ``limit - 1`` and both pass), and "now" is the database's
clock, so hosts with drifting clocks agree. On SQLite the write lock serialises them.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from wowlab_core.claim_codes import RateLimiter
from wowlab_core.db import is_postgres, write_session
from wowlab_core.errors import RateLimited
from wowlab_core.models import RateLimitHit, utcnow

MAX_KEY = 200


class DatabaseRateLimiter(RateLimiter):
    """A sliding-window limit per key, kept in the database (shared by every process)."""

    def __init__(self, db: Engine, *, name: str, limit: int, window_seconds: float) -> None:
        super().__init__(limit=limit, window_seconds=window_seconds)
        self.db = db
        self.name = name

    def _now(self, session: Session) -> datetime:
        if is_postgres(self.db):
            now: datetime = session.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
            return now
        return utcnow()

    def hit(self, key: str, *, what: str = "attempts") -> None:
        """Count one attempt for ``key``.

        Raises:
            RateLimited: ``limit`` attempts were already made within the window.
        """
        full = f"{self.name}:{key}"[:MAX_KEY]
        with write_session(self.db) as session:
            if is_postgres(self.db):
                session.execute(
                    sa.text("select pg_advisory_xact_lock(hashtextextended(:key, 7))"),
                    {"key": full},
                )
            now = self._now(session)
            since = now - timedelta(seconds=self.window)
            session.execute(
                sa.delete(RateLimitHit).where(
                    col(RateLimitHit.key) == full, col(RateLimitHit.at) <= since
                )
            )
            count, oldest = session.execute(
                sa.select(sa.func.count(), sa.func.min(col(RateLimitHit.at))).where(
                    col(RateLimitHit.key) == full
                )
            ).one()
            if count >= self.limit:
                session.commit()  # keep the pruning
                left = (oldest + timedelta(seconds=self.window) - now).total_seconds()
                raise RateLimited(f"too many {what}; try again in {max(1, math.ceil(left))} s")
            session.add(RateLimitHit(key=full, at=now))
            session.commit()


__all__ = ["DatabaseRateLimiter"]
