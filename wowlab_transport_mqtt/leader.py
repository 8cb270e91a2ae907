"""Which of several bridges does the chores: a PostgreSQL advisory lock.

The bridges share the requests (shared subscriptions) but the chores must not be done by
each: pushing wake-ups to idle nodes (every node woken once, not once per bridge),
requeueing expired leases, sweeping the broker accounts of removed nodes. The bridge
that holds a session-level advisory lock on its own connection does them; when it dies
its connection closes, the lock is freed and another bridge takes it at its next try.
On SQLite (one process) the one bridge always leads.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from sqlalchemy.engine import Engine

from wowlab_core.db import is_postgres

log = logging.getLogger(__name__)

#: The advisory lock's key (any fixed 64-bit number; this one spells "wowlab").
LOCK_KEY = 0x776F776C6162


class Leadership:
    """Tries to hold the chores lock; :meth:`check` says whether it is held (blocking)."""

    def __init__(self, db: Engine) -> None:
        self.enabled = is_postgres(db)
        self._conninfo = (
            db.url.set(drivername="postgresql").render_as_string(hide_password=False)
            if self.enabled
            else ""
        )
        self._conn: Any = None
        self.leading = not self.enabled

    def check(self) -> bool:
        """Take the lock if free; True while this process holds it."""
        if not self.enabled:
            return True
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)
                self.leading = False
            if self.leading:
                self._conn.execute("select 1")  # still connected, so still held
            else:
                row = self._conn.execute("select pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
                self.leading = bool(row and row[0])
                if self.leading:
                    log.info("this bridge now does the chores (wake-ups, requeues, sweeps)")
        except psycopg.Error as exc:
            log.warning("bridge leadership: %s", exc)
            self.close()
        return self.leading

    def close(self) -> None:
        """Give the lock up (by closing its connection)."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None
        self.leading = not self.enabled


__all__ = ["LOCK_KEY", "Leadership"]
