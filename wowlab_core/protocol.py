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
    """What a node says about itself when it registers.

    ``engines`` maps each engine the node can run to its version: chunks go only to
    nodes that run the job's engine at the job's version (None: the node did not say,
    and gets any chunk). ``labels`` are free-form tags access rules can look at.
    """

    name: str
    max_parallel: int = 1
    cores: int | None = None
    platform: str | None = None
    version: str | None = None
    engines: dict[str, str] | None = None
    labels: list[str] | None = None


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
    #: Who may use the node besides its owner (``owner only``, ``friends, 1 guild``,
    #: ``everyone`` ...), for the node's own display; None: the coordinator does not say.
    sharing: str | None = None


@dataclass(frozen=True)
class RunningChunk(_Message):
    """A chunk a node is running, named in its heartbeat by the lease it holds."""

    chunk_id: int
    lease_token: str
    #: Iterations of the chunk done so far (for progress displays).
    iterations_done: int = 0


@dataclass(frozen=True)
class Heartbeat(_Message):
    """What a node says in a heartbeat: every chunk it is running, and what it can run.

    Only the leases named here are extended; every other lease the node's identity holds
    is released (a node that restarted, or whose lease call failed after the lease was
    committed, does not keep a chunk forever). So a node must not send a heartbeat while
    a lease call of its own is still unanswered. ``engines`` and ``labels`` (None: no
    change) update what the node advertised at registration.
    """

    running: list[RunningChunk] = field(default_factory=list)
    engines: dict[str, str] | None = None
    labels: list[str] | None = None

    @classmethod
    def from_dict(cls, data: Any) -> Heartbeat:
        """Build from a JSON object; ``running`` is required (an empty list is fine)."""
        if not isinstance(data, dict):
            raise InvalidRequest("Heartbeat must be a JSON object")
        raw = data.get("running")
        if not isinstance(raw, list):
            raise InvalidRequest("running must be a list of running chunks", field="running")
        running = [
            item if isinstance(item, RunningChunk) else RunningChunk.from_dict(item) for item in raw
        ]
        return cls(running=running, engines=data.get("engines"), labels=data.get("labels"))


@dataclass(frozen=True)
class HeartbeatReply(_Message):
    """The coordinator's answer to a heartbeat.

    ``cancelled_chunks``: chunks named in the heartbeat that the node should stop (their
    job ended, or the lease is no longer the node's). ``released_chunks``: chunks the
    identity held that the heartbeat did not name, now handed back.
    """

    status: str
    cancelled_chunks: list[int] = field(default_factory=list)
    max_parallel: int | None = None
    heartbeat_seconds: float | None = None
    released_chunks: list[int] = field(default_factory=list)
    #: The owner's user name and the node's sharing, as in :class:`ClaimStatus` (None:
    #: not said), so a node's display follows changes made on the portal.
    owner: str | None = None
    sharing: str | None = None


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
    #: Heartbeats cannot extend the lease past this (from the chunk's expected cost).
    deadline_at: datetime | None = None
    #: Wall seconds the node may spend on the chunk before it stops it and reports it
    #: ``over-budget`` (derived from the chunk's expected cost); None: the node's own cap.
    budget_seconds: float | None = None


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


class FailReason(StrEnum):
    """Why a node gives a chunk up (the ``reason`` of a fail call)."""

    ERROR = "error"  # the engine or the node failed: counts toward failing the job
    #: The chunk ran past its time budget and was stopped: not the node's fault; the
    #: coordinator cuts the chunk smaller.
    OVER_BUDGET = "over-budget"


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
    "FailReason",
    "Heartbeat",
    "HeartbeatReply",
    "Lease",
    "NodeCredentials",
    "NodeInfo",
    "Outcome",
    "Registration",
    "RunningChunk",
]
