"""Wait for the database at start: in a compose file or after a reboot the portal often
starts before PostgreSQL accepts connections, and it should come up when the database
does rather than exit."""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

FIRST_PAUSE = 0.5
LONGEST_PAUSE = 5.0


def wait_for_database(db: Engine, *, total_seconds: float) -> None:
    """Return once ``db`` answers a query; retry with growing pauses for at most
    ``total_seconds``, logging one line per failed attempt.

    Raises:
        sqlalchemy.exc.OperationalError: the last failure, when the time is up (the CLI
            prints it as one line: ``error: cannot use the database: ...``).
    """
    deadline = time.monotonic() + total_seconds
    pause = FIRST_PAUSE
    attempt = 0
    shown = db.url.render_as_string(hide_password=True)
    while True:
        attempt += 1
        try:
            with db.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa_exc.OperationalError as exc:
            left = deadline - time.monotonic()
            reason = str(exc.orig or exc).strip().splitlines()[0]
            if left <= 0:
                log.error("database %s still not reachable after %d attempts", shown, attempt)
                raise
            wait = min(pause, left)
            log.warning(
                "database %s not reachable (attempt %d): %s; retrying in %.1f s",
                shown, attempt, reason, wait,
            )  # fmt: skip
            time.sleep(wait)
            pause = min(pause * 2, LONGEST_PAUSE)
            continue
        if attempt > 1:
            log.warning("database %s is up (attempt %d)", shown, attempt)
        return


__all__ = ["wait_for_database"]
