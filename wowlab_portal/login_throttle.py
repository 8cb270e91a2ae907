"""Login throttling per (account, address): growing delays, never a lockout.

After ``free`` wrong passwords for one account from one address, that pair waits
``base * 2 ** (failures - free)`` seconds (at most ``cap``) before its next attempt is
even checked. The count is kept in the database (``login_failures``), so every portal
worker sees it, and a right password clears it. A stranger's wrong guesses slow down the
stranger's address only: the owner, logging in from their own address, is not affected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session, col

from wowlab_core.errors import RateLimited
from wowlab_core.models import LoginFailure, utcnow

#: Failures older than this are forgotten (the count starts again).
FORGET_AFTER = timedelta(days=1)
MAX_USERNAME = 64


@dataclass(frozen=True)
class LoginThrottle:
    """The policy: free failures, the first delay, the longest delay (seconds)."""

    free: int = 3
    base_seconds: float = 1.0
    cap_seconds: float = 900.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` wrong passwords in a row."""
        if failures < self.free:
            return 0.0
        return min(self.cap_seconds, self.base_seconds * 2.0 ** (failures - self.free))

    @staticmethod
    def _key(username: str, address: str) -> tuple[str, str]:
        return (username.lower()[:MAX_USERNAME], address[:64])

    def check(
        self, session: Session, *, username: str, address: str, field: str = "password"
    ) -> None:
        """Refuse the attempt while this pair must wait.

        Raises:
            RateLimited: with the seconds left, naming ``field`` (the password's).
        """
        row = session.get(LoginFailure, self._key(username, address))
        if row is None or row.blocked_until is None:
            return
        left = (row.blocked_until - utcnow()).total_seconds()
        if left > 0:
            raise RateLimited(
                "too many wrong passwords for this account from your address; "
                f"try again in {math.ceil(left)} s",
                field=field,
            )

    def failed(self, session: Session, *, username: str, address: str) -> None:
        """Count a wrong password for this pair (and drop long-forgotten pairs, so
        guesses at random names cannot grow the table for ever). Does not commit."""
        now = utcnow()
        key = self._key(username, address)
        session.execute(
            delete(LoginFailure).where(col(LoginFailure.last_failed_at) < now - FORGET_AFTER)
        )
        row = session.get(LoginFailure, key)
        if row is None:
            row = LoginFailure(username=key[0], address=key[1], failures=0)
        elif now - row.last_failed_at > FORGET_AFTER:
            row.failures = 0
        row.failures += 1
        row.last_failed_at = now
        wait = self.delay(row.failures)
        row.blocked_until = now + timedelta(seconds=wait) if wait > 0 else None
        session.add(row)

    def succeeded(self, session: Session, *, username: str, address: str) -> None:
        """Forget this pair's failures (the right password). Does not commit."""
        row = session.get(LoginFailure, self._key(username, address))
        if row is not None:
            session.delete(row)


__all__ = ["LoginThrottle"]
