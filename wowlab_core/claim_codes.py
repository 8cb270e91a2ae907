"""Claim codes: the 6 characters a node shows so its owner can claim it (RFC 8628 style).

The alphabet has 32 symbols without the look-alikes 0/O and 1/I, so a code is 30 bits.
Entry is case-insensitive and ignores spaces and dashes. Codes expire (default 15 minutes)
and are single use; claim attempts are rate-limited by :class:`RateLimiter`.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta

from wowlab_core.errors import ClaimCodeInvalid, RateLimited

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
DEFAULT_LIFETIME = timedelta(minutes=15)
_SEPARATORS = str.maketrans("", "", " -\t")


def generate_claim_code() -> str:
    """A new random code from a cryptographic source."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_claim_code(entered: str) -> str:
    """Turn what a user typed into the stored form (upper case, no spaces or dashes).

    Raises:
        ClaimCodeInvalid: the text cannot be a claim code.
    """
    code = entered.translate(_SEPARATORS)
    # ASCII first: upper() folds some non-ASCII letters into codes ("ß" -> "SS").
    code = code.upper() if code.isascii() else ""
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        raise ClaimCodeInvalid(
            f"a claim code is {CODE_LENGTH} letters and digits (no 0, O, 1 or I), "
            f"like ABC-234; got {entered.strip()!r}",
            field="code",
        )
    return code


def is_valid_claim_code(code: str) -> bool:
    """Whether ``code`` is in the stored form."""
    return len(code) == CODE_LENGTH and all(c in ALPHABET for c in code)


def format_claim_code(code: str) -> str:
    """Display form, easier to read aloud: ``ABC-234``."""
    return f"{code[:3]}-{code[3:]}"


def claim_code_expiry(
    now: datetime | None = None, lifetime: timedelta = DEFAULT_LIFETIME
) -> datetime:
    """When a code made now stops working."""
    return (now or datetime.now(UTC)) + lifetime


class RateLimiter:
    """Sliding-window limit of attempts per key (an account, a client address).

    In-process and thread-safe: right for one process (SQLite). Several portal workers
    or bridges share a limit through :class:`wowlab_core.rate_limits.DatabaseRateLimiter`
    (or the portal's Redis limiter), which keep this interface.
    """

    def __init__(self, *, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._attempts: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, *, what: str = "attempts") -> None:
        """Count one attempt for ``key``.

        Raises:
            RateLimited: ``limit`` attempts were already made within the window.
        """
        now = time.monotonic()
        with self._lock:
            attempts = self._attempts.setdefault(key, deque())
            while attempts and attempts[0] <= now - self.window:
                attempts.popleft()
            if len(attempts) >= self.limit:
                wait = int(attempts[0] + self.window - now) + 1
                raise RateLimited(f"too many {what}; try again in {wait} s")
            attempts.append(now)


__all__ = [
    "ALPHABET",
    "CODE_LENGTH",
    "DEFAULT_LIFETIME",
    "RateLimiter",
    "claim_code_expiry",
    "format_claim_code",
    "generate_claim_code",
    "is_valid_claim_code",
    "normalize_claim_code",
]
