"""Error types of wowlab: each carries a message a user can act on.

The CLI prints ``str(error)`` as one line and exits with ``exit_code`` (2: the command line
asked for something wrong or impossible; 1: it failed while running); the portal maps
``status_code`` to the HTTP response and ``field`` to the JSON body.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


class WowlabError(Exception):
    """Base class of every error wowlab raises on purpose."""

    status_code: int = 400
    #: The CLI's exit code: 1 for a failure while running, 2 for bad input (usage).
    exit_code: int = 1

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str | None]:
        """The error as a JSON-ready body: ``{"error": ..., "detail": ..., "field": ...}``."""
        return {"error": type(self).__name__, "detail": self.message, "field": self.field}


class ConfigInvalid(WowlabError):
    """A simulation config failed validation (bad JSON, unknown reference, limit exceeded)."""

    status_code = 422
    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problems: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message, field=field)
        #: Every mistake found, as (path, message), when validation found several: a form
        #: can show them all where ``message`` names the first.
        self.problems = tuple(problems)


class ConfigTooExpensive(WowlabError):
    """A config whose single iteration costs more than the pool accepts (volunteers first)."""

    status_code = 422


class InvalidRequest(WowlabError):
    """A request had a bad value (iterations out of range, unknown engine, ...)."""

    status_code = 422
    exit_code = 2


class NotFound(WowlabError):
    """The thing asked for does not exist, or the caller may not know that it does."""

    status_code = 404


class AuthenticationFailed(WowlabError):
    """A node token or user credential was wrong."""

    status_code = 401


class PermissionDenied(WowlabError):
    """The caller is known but may not do this."""

    status_code = 403


class ClaimCodeInvalid(WowlabError):
    """No pending node has this claim code."""

    status_code = 404


class ClaimCodeExpired(WowlabError):
    """The claim code existed but its lifetime is over; the node shows a new one."""

    status_code = 410


class RateLimited(WowlabError):
    """Too many attempts in a short time (the message ends "try again in N s")."""

    status_code = 429


def retry_after_seconds(message: str) -> float | None:
    """The wait a :class:`RateLimited` message names ("... try again in 12 s"), or None."""
    match = re.search(r"try again in (\d+(?:\.\d+)?) s\b", message)
    return float(match.group(1)) if match else None


class QuotaExceeded(WowlabError):
    """A user would pass a per-user limit (active jobs, queued iterations)."""

    status_code = 429


class RequestTooLarge(WowlabError):
    """A request body over the server's limit; it was refused before being read."""

    status_code = 413


class LeaseLost(WowlabError):
    """The lease is not (or no longer) held by this node, and no valid late result applies."""

    status_code = 409


class ResultInvalid(WowlabError):
    """A reported chunk result does not match the chunk it claims to answer."""

    status_code = 422


class EngineUnavailable(WowlabError):
    """No engine of that name is registered (its plugin is missing or failed to load)."""

    status_code = 422
    exit_code = 2


class TransportUnavailable(WowlabError):
    """No transport of that name is registered."""

    status_code = 422
    exit_code = 2


class ChunkStopped(WowlabError):
    """An engine stopped a chunk early because its stop flag was set.

    Attributes:
        iterations_done: iterations finished before the stop.
        partial: the exact result of those iterations (a ``ChunkResult``), if the engine
            kept one; None otherwise.
    """

    status_code = 409

    def __init__(self, message: str, *, iterations_done: int = 0, partial: object = None) -> None:
        super().__init__(message)
        self.iterations_done = iterations_done
        self.partial = partial


class TransportError(WowlabError):
    """A transport could not reach the coordinator (network down, server error)."""

    status_code = 503


__all__ = [
    "AuthenticationFailed",
    "ChunkStopped",
    "ClaimCodeExpired",
    "ClaimCodeInvalid",
    "ConfigInvalid",
    "ConfigTooExpensive",
    "EngineUnavailable",
    "InvalidRequest",
    "LeaseLost",
    "NotFound",
    "PermissionDenied",
    "QuotaExceeded",
    "RateLimited",
    "RequestTooLarge",
    "ResultInvalid",
    "TransportError",
    "TransportUnavailable",
    "WowlabError",
    "retry_after_seconds",
]
