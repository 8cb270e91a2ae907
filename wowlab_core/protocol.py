"""The messages between nodes and the coordinator, shared by every transport.

Each message is a frozen dataclass with ``to_dict``/``from_dict`` for JSON transports
(HTTP, MQTT); the local transport passes the objects themselves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from wowlab_core.errors import InvalidRequest


def _dt_out(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt_in(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidRequest(f"not an ISO timestamp: {value!r}") from None


class _Message:
    """Mixin: JSON round trip, with datetimes as ISO strings and unknown keys ignored."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)  # type: ignore[call-overload]
        return {k: _dt_out(v) if isinstance(v, datetime) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Build from a JSON object; raises :class:`InvalidRequest` on a missing field."""
        if not isinstance(data, dict):
            raise InvalidRequest(f"{cls.__name__} must be a JSON object")
        kwargs: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in data:
                value = data[f.name]
                if "datetime" in str(f.type):
                    value = _dt_in(value)
                kwargs[f.name] = value
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise InvalidRequest(f"{cls.__name__}: {exc}") from None


@dataclass(frozen=True)
class NodeCredentials(_Message):
    """Who a node is: its id and its secret token (shown once, stored hashed)."""

    node_id: int
    token: str


@dataclass(frozen=True)
class NodeInfo(_Message):
    """What a node says about itself when it registers."""

    name: str
    max_parallel: int = 1
    cores: int | None = None
    platform: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class Registration(_Message):
    """The answer to a registration: credentials and the code to show."""

    node_id: int
    token: str
    claim_code: str
    claim_expires_at: datetime | None


@dataclass(frozen=True)
class ClaimStatus(_Message):
    """Whether the node has been claimed; if not, the (possibly renewed) code to show."""

    claimed: bool
    owner: str | None = None
    name: str | None = None
    claim_code: str | None = None
    claim_expires_at: datetime | None = None
    max_parallel: int | None = None
    #: How often the coordinator wants heartbeats (its leases last a few times longer).
    heartbeat_seconds: float | None = None


@dataclass(frozen=True)
class HeartbeatReply(_Message):
    """The coordinator's answer to a heartbeat."""

    status: str
    cancelled_chunks: list[int] = field(default_factory=list)
    max_parallel: int | None = None
    heartbeat_seconds: float | None = None


@dataclass(frozen=True)
class Lease(_Message):
    """A chunk leased to a node until ``expires_at``."""

    chunk_id: int
    job_id: int
    config_hash: str
    engine: str
    seed: int
    seed_offset: int
    iterations: int
    lease_token: str
    expires_at: datetime | None


@dataclass(frozen=True)
class ConfigPayload(_Message):
    """A config fetched by hash."""

    config_hash: str
    engine: str
    config: Any


@dataclass(frozen=True)
class Completion(_Message):
    """A node's result for a leased chunk."""

    chunk_id: int
    lease_token: str
    result: dict[str, Any]
    elapsed_seconds: float | None = None


class Outcome(StrEnum):
    """What became of a completion."""

    ACCEPTED = "accepted"  # counted
    DUPLICATE = "duplicate"  # already counted before: fine, nothing changes
    IGNORED = "ignored"  # the job was cancelled or has ended
    REJECTED = "rejected"  # wrong lease token or an invalid result


@dataclass(frozen=True)
class CompletionOutcome(_Message):
    """The coordinator's answer for one completion."""

    chunk_id: int
    outcome: str
    detail: str | None = None


__all__ = [
    "ClaimStatus",
    "Completion",
    "CompletionOutcome",
    "ConfigPayload",
    "HeartbeatReply",
    "Lease",
    "NodeCredentials",
    "NodeInfo",
    "Outcome",
    "Registration",
]
