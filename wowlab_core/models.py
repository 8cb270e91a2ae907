"""The data model (SQLModel tables), with the seed design's defects fixed.

- chunks are leased, not pre-assigned: ``sim_chunks.node_id`` is who holds or held a chunk,
  with a lease deadline and attempt counts (defect 1);
- a pending node's claim code expires and only the node (with its token) reads its row
  (defects 2, 3); tokens are stored as sha256 hashes;
- configs are keyed by the hash of their canonical JSON (defect 4);
- deleting a node sets ``sim_chunks.node_id`` to null instead of failing (defect 5);
- ``friends`` is an access type (defect 6);
- chunk results are exact mergeable sums (defect 7).

Times are timezone-aware UTC (``utcnow()``) on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """Now, timezone-aware UTC (the form every timestamp column holds)."""
    return datetime.now(UTC)


class NodeStatus(StrEnum):
    """A node's presence."""

    PENDING = "pending"
    ONLINE = "online"
    OFFLINE = "offline"


class AccessType(StrEnum):
    """Who may use a node, besides its owner."""

    OWNER = "owner"  # only the owner (the default after a claim)
    USER = "user"  # one chosen user: target_id is a user id
    FRIENDS = "friends"  # the owner's accepted friends
    GUILD = "guild"  # members of a guild: target_id is a guild id
    PUBLIC = "public"  # every user


class JobStatus(StrEnum):
    """A job's life cycle."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_JOB_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class ChunkStatus(StrEnum):
    """A chunk's life cycle."""

    PENDING = "pending"
    LEASED = "leased"
    #: Computed once; waiting for a second node to run it again (result verification).
    VERIFY = "verify"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


def _check(column: str, enum: type[StrEnum]) -> sa.CheckConstraint:
    values = ", ".join(f"'{v.value}'" for v in enum)
    return sa.CheckConstraint(f"{column} in ({values})", name=f"ck_{column}_valid")


# --- accounts -------------------------------------------------------------------------


class User(SQLModel, table=True):
    """A portal account (on Supabase: ``auth.users``)."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, sa_column_kwargs={"unique": True}, index=False)
    email: str | None = Field(default=None, max_length=254)
    password_hash: str | None = Field(default=None, max_length=255)
    is_admin: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow)


class Guild(SQLModel, table=True):
    """A group of players that can share nodes."""

    __tablename__ = "guilds"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, sa_column_kwargs={"unique": True})
    owner_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    )
    created_at: datetime = Field(default_factory=utcnow)


class GuildMember(SQLModel, table=True):
    """Membership of a user in a guild."""

    __tablename__ = "guild_members"
    __table_args__ = (sa.CheckConstraint("role in ('owner', 'member')", name="ck_role_valid"),)

    guild_id: int = Field(
        sa_column=sa.Column(
            sa.ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    user_id: int = Field(
        sa_column=sa.Column(
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
            nullable=False,
            index=True,
        )
    )
    role: str = Field(default="member", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class Friendship(SQLModel, table=True):
    """A friend request; ``accepted`` friendships count both ways."""

    __tablename__ = "friendships"
    __table_args__ = (
        sa.UniqueConstraint("requester_id", "addressee_id", name="uq_friendship_pair"),
        sa.CheckConstraint("requester_id <> addressee_id", name="ck_not_self"),
        sa.CheckConstraint("status in ('pending', 'accepted')", name="ck_friend_status_valid"),
    )

    id: int | None = Field(default=None, primary_key=True)
    requester_id: int = Field(
        sa_column=sa.Column(
            sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    addressee_id: int = Field(
        sa_column=sa.Column(
            sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    status: str = Field(default="pending", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class GuildInvite(SQLModel, table=True):
    """An open invitation of a user into a guild; accepting it makes a membership."""

    __tablename__ = "guild_invites"

    guild_id: int = Field(
        sa_column=sa.Column(
            sa.ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    user_id: int = Field(
        sa_column=sa.Column(
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
            nullable=False,
            index=True,
        )
    )
    invited_by: int | None = Field(
        default=None, sa_column=sa.Column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    )
    created_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    """A personal API token for scripts and the CLI; only its sha256 is stored."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=sa.Column(
            sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    name: str = Field(max_length=100)
    #: The first characters of the token, so a user can tell their tokens apart.
    prefix: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    #: After this the token is refused (None: it never expires).
    expires_at: datetime | None = None


class WebSession(SQLModel, table=True):
    """A logged-in browser session. The cookie holds a random id, this row its sha256:
    logging out, changing the password or "log out everywhere" deletes rows, and a copied
    cookie stops working."""

    __tablename__ = "web_sessions"

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(
        sa_column=sa.Column(
            sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class LoginFailure(SQLModel, table=True):
    """Wrong passwords for one account from one address, and until when that pair must
    wait before its next attempt (a delay that doubles, never a lockout of the owner)."""

    __tablename__ = "login_failures"

    #: The username as typed, lower-cased (unknown names are throttled alike).
    username: str = Field(primary_key=True, max_length=64)
    address: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    last_failed_at: datetime = Field(default_factory=utcnow)
    blocked_until: datetime | None = None


class RateLimitHit(SQLModel, table=True):
    """One counted attempt of a rate limit (``key`` names the limit and who is limited).

    Kept in the database so a limit holds across every portal worker and bridge; rows
    older than their window are deleted when the key is next counted.
    """

    __tablename__ = "rate_limit_hits"
    __table_args__ = (sa.Index("ix_rate_limit_hits_key_at", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200)
    at: datetime = Field(default_factory=utcnow)


class RequestKey(SQLModel, table=True):
    """A transport request already carried out (an idempotency key) and its answer.

    An MQTT request retried to another bridge, or after a bridge restart, finds its key
    here and gets the stored answer instead of being carried out again.
    """

    __tablename__ = "request_keys"

    #: sha256 of (reply topic, correlation data), hex.
    key: str = Field(primary_key=True, max_length=64)
    reply: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, index=True)


# --- nodes ----------------------------------------------------------------------------


class Node(SQLModel, table=True):
    """A compute node; ``user_id`` is null while it waits to be claimed."""

    __tablename__ = "nodes"
    __table_args__ = (_check("status", NodeStatus),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True),
    )
    name: str = Field(max_length=100)
    claim_code: str | None = Field(default=None, max_length=6, sa_column_kwargs={"unique": True})
    claim_expires_at: datetime | None = None
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    max_parallel: int = Field(default=1)
    cores: int | None = None
    status: str = Field(default=NodeStatus.PENDING.value, max_length=16)
    last_seen_at: datetime | None = None
    version: str | None = Field(default=None, max_length=64)
    platform: str | None = Field(default=None, max_length=128)
    #: Measured iterations per second of one worker (exponential moving average).
    iterations_per_second: float | None = None
    #: Engines the node runs, ``{name: version}``, as it advertised them (None: unknown).
    engines: Any = Field(default=None, sa_column=sa.Column(JSONType))
    #: Free-form labels (``["raid-only", "fast"]``) access rules can look at.
    labels: Any = Field(default=None, sa_column=sa.Column(JSONType))
    #: Results of this node that other nodes confirmed in a row (reset by a mismatch).
    trust_score: int = Field(default=0)
    #: Set when another node's run contradicted this node's result: it then runs only
    #: its owner's jobs until an admin clears the flag.
    flagged_at: datetime | None = None
    flag_reason: str | None = Field(default=None, max_length=500)
    #: Measured engine events per second of one worker (exponential moving average): unlike
    #: the iteration rate, it carries over from one config to another.
    events_per_second: float | None = None
    created_at: datetime = Field(default_factory=utcnow)
    claimed_at: datetime | None = None


class NodeAccess(SQLModel, table=True):
    """One access grant of a node."""

    __tablename__ = "node_access"
    __table_args__ = (
        _check("access_type", AccessType),
        sa.UniqueConstraint("node_id", "access_type", "target_id", name="uq_node_access_grant"),
        sa.Index("ix_node_access_target", "access_type", "target_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(
        sa_column=sa.Column(
            sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    access_type: str = Field(max_length=16)
    target_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


# --- simulations ----------------------------------------------------------------------


class SimConfig(SQLModel, table=True):
    """A config, stored once under the sha256 of its canonical JSON."""

    __tablename__ = "sim_configs"

    hash: str = Field(primary_key=True, max_length=64)
    config: Any = Field(sa_column=sa.Column(JSONType, nullable=False))
    engine: str = Field(max_length=64)
    #: Cost of one iteration on ``engine`` as measured at its first submit (see
    #: :mod:`wowlab_core.cost`), reused by later submits of the same config.
    seconds_per_iteration: float | None = None
    events_per_iteration: float | None = None
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime = Field(default_factory=utcnow)


class SimJob(SQLModel, table=True):
    """A submitted simulation."""

    __tablename__ = "sim_jobs"
    __table_args__ = (
        _check("status", JobStatus),
        sa.CheckConstraint("total_iterations > 0", name="ck_total_iterations_positive"),
        sa.Index("ix_sim_jobs_user_status", "user_id", "status"),
        sa.Index("ix_sim_jobs_status", "status"),
        sa.Index("ix_sim_jobs_share_token_hash", "share_token_hash", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    config_hash: str = Field(
        sa_column=sa.Column(sa.String(64), sa.ForeignKey("sim_configs.hash"), nullable=False)
    )
    engine: str = Field(max_length=64)
    #: The engine version the job was validated with; nodes must run the same one, so
    #: that a second run of a chunk can be compared byte for byte.
    engine_version: str | None = Field(default=None, max_length=64)
    total_iterations: int
    completed_iterations: int = 0
    seed: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    status: str = Field(default=JobStatus.PENDING.value, max_length=16)
    #: Why a pending job is not running yet (no eligible node ...), shown to its owner.
    status_reason: str | None = Field(default=None, max_length=500)
    #: Keep adding rounds until the 95 % error of the mean is below this percentage.
    target_error: float | None = None
    max_iterations: int | None = None
    #: A chunk fails the job once this many different nodes reported an error for it
    #: (at least 2: one broken machine never fails a job).
    max_attempts: int = 2
    #: Only the owner's own nodes may run it.
    own_nodes_only: bool = False
    #: Nodes shared with everyone (public) may run it too; off by default.
    allow_public: bool = False
    #: Measured cost of one iteration: wall seconds on the submitting machine, and engine
    #: events (machine-independent). Chunks are sized and budgeted by them.
    seconds_per_iteration: float | None = None
    events_per_iteration: float | None = None
    result: Any = Field(default=None, sa_column=sa.Column(JSONType))
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: What ran, for people: the config's ``name``, else the example's, else the file's.
    name: str | None = Field(default=None, max_length=200)
    #: The fight as the engine read the config (None: the engine does not say).
    fight_seconds: float | None = None
    #: Each iteration lasts ``fight_seconds`` x [1 - v, 1 + v].
    fight_variation: float | None = None
    targets: int | None = None
    #: sha256 of the job's public read-only link token (None: not shared).
    share_token_hash: str | None = Field(default=None, max_length=64)
    shared_at: datetime | None = None


class SimChunk(SQLModel, table=True):
    """A range of a job's iterations: ``[seed_offset, seed_offset + iterations)``."""

    __tablename__ = "sim_chunks"
    __table_args__ = (
        _check("status", ChunkStatus),
        sa.UniqueConstraint("job_id", "seed_offset", name="uq_chunk_job_offset"),
        sa.Index(
            "ix_sim_chunks_pending",
            "job_id",
            "seed_offset",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        sa.Index(
            "ix_sim_chunks_leased",
            "lease_expires_at",
            postgresql_where=sa.text("status = 'leased'"),
            sqlite_where=sa.text("status = 'leased'"),
        ),
        sa.Index(
            "ix_sim_chunks_verify",
            "job_id",
            "seed_offset",
            postgresql_where=sa.text("status = 'verify'"),
            sqlite_where=sa.text("status = 'verify'"),
        ),
        sa.Index("ix_sim_chunks_node", "node_id"),
        # The chunks a node holds (leased, or cancelled and not yet told): lease calls
        # and heartbeats read these; the index does not grow with the node's history.
        sa.Index(
            "ix_sim_chunks_held",
            "node_id",
            postgresql_where=sa.text("lease_token_hash IS NOT NULL"),
            sqlite_where=sa.text("lease_token_hash IS NOT NULL"),
        ),
        sa.Index("ix_sim_chunks_computed_by", "computed_by"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("sim_jobs.id", ondelete="CASCADE"), nullable=False)
    )
    #: Who holds (status leased) or held the chunk. Set null when the node is deleted.
    node_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.ForeignKey("nodes.id", ondelete="SET NULL"))
    )
    config_hash: str = Field(
        sa_column=sa.Column(sa.String(64), sa.ForeignKey("sim_configs.hash"), nullable=False)
    )
    iterations: int
    seed_offset: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    status: str = Field(default=ChunkStatus.PENDING.value, max_length=16)
    attempts: int = 0  # leases handed out
    failures: int = 0  # errors reported by nodes
    expirations: int = 0  # leases that ran out
    lease_token_hash: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = None
    #: Heartbeats extend a lease up to here and no further (from the chunk's expected cost).
    lease_deadline_at: datetime | None = None
    #: Iterations the node running it says it has done (from heartbeats, for progress).
    progress: int = 0
    result: Any = Field(default=None, sa_column=sa.Column(JSONType))
    #: The node whose result is in ``result``.
    computed_by: int | None = Field(
        default=None, sa_column=sa.Column(sa.ForeignKey("nodes.id", ondelete="SET NULL"))
    )
    #: The node whose own run matched ``result`` (None: not verified).
    verified_by: int | None = Field(
        default=None, sa_column=sa.Column(sa.ForeignKey("nodes.id", ondelete="SET NULL"))
    )
    #: None (not sampled), pending (a second run is due), tiebreak (two runs disagree,
    #: a third decides), verified.
    verify_state: str | None = Field(default=None, max_length=16)
    #: A second, disagreeing result and its node, kept until a third run decides.
    alt_result: Any = Field(default=None, sa_column=sa.Column(JSONType))
    alt_node_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.ForeignKey("nodes.id", ondelete="SET NULL"))
    )
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)
    leased_at: datetime | None = None
    completed_at: datetime | None = None


class ChunkLease(SQLModel, table=True):
    """Every lease ever handed out, so a late but valid result can be recognised."""

    __tablename__ = "chunk_leases"
    __table_args__ = (sa.Index("ix_chunk_leases_chunk_token", "chunk_id", "token_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    chunk_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("sim_chunks.id", ondelete="CASCADE"), nullable=False)
    )
    node_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.ForeignKey("nodes.id", ondelete="SET NULL"), index=True),
    )
    token_hash: str = Field(max_length=64)
    leased_at: datetime = Field(default_factory=utcnow)
    #: How the lease ended when it did not end in an accepted result: ``failed`` (the
    #: node reported an error: it is not given the chunk again), ``over-budget``.
    outcome: str | None = Field(default=None, max_length=16)


class Notice(SQLModel, table=True):
    """A message for a user (a node of theirs was flagged, a job rested on a liar ...)."""

    __tablename__ = "notices"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=sa.Column(
            sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    kind: str = Field(max_length=32)
    message: str = Field(max_length=1000)
    job_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.ForeignKey("sim_jobs.id", ondelete="SET NULL"))
    )
    node_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.ForeignKey("nodes.id", ondelete="SET NULL"))
    )
    created_at: datetime = Field(default_factory=utcnow)
    read_at: datetime | None = None


__all__ = [
    "FINISHED_JOB_STATUSES",
    "AccessType",
    "ApiToken",
    "ChunkLease",
    "ChunkStatus",
    "Friendship",
    "Guild",
    "GuildInvite",
    "GuildMember",
    "JSONType",
    "JobStatus",
    "LoginFailure",
    "Node",
    "NodeAccess",
    "NodeStatus",
    "Notice",
    "RateLimitHit",
    "RequestKey",
    "SimChunk",
    "SimConfig",
    "SimJob",
    "User",
    "WebSession",
    "utcnow",
]
