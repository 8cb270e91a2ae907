"""Error types of wowlab: each carries a message a user can act on.

The CLI prints ``str(error)`` as one line; the portal maps ``status_code`` to the HTTP
response and ``field`` to the JSON body.
"""

from __future__ import annotations


class WowlabError(Exception):
    """Base class of every error wowlab raises on purpose."""

    status_code: int = 400

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


class InvalidRequest(WowlabError):
    """A request had a bad value (iterations out of range, unknown engine, ...)."""

    status_code = 422


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
    """Too many attempts in a short time."""

    status_code = 429


class LeaseLost(WowlabError):
    """The lease is not (or no longer) held by this node, and no valid late result applies."""

    status_code = 409


class ResultInvalid(WowlabError):
    """A reported chunk result does not match the chunk it claims to answer."""

    status_code = 422


class EngineUnavailable(WowlabError):
    """No engine of that name is registered (its plugin is missing or failed to load)."""

    status_code = 422


class TransportUnavailable(WowlabError):
    """No transport of that name is registered."""

    status_code = 422


class TransportError(WowlabError):
    """A transport could not reach the coordinator (network down, server error)."""

    status_code = 503


__all__ = [
    "AuthenticationFailed",
    "ClaimCodeExpired",
    "ClaimCodeInvalid",
    "ConfigInvalid",
    "EngineUnavailable",
    "InvalidRequest",
    "LeaseLost",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "ResultInvalid",
    "TransportError",
    "TransportUnavailable",
    "WowlabError",
]
