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
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    config_hash: str = Field(
        sa_column=sa.Column(sa.String(64), sa.ForeignKey("sim_configs.hash"), nullable=False)
    )
    engine: str = Field(max_length=64)
    total_iterations: int
    completed_iterations: int = 0
    seed: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    status: str = Field(default=JobStatus.PENDING.value, max_length=16)
    #: Why a pending job is not running yet (no eligible node ...), shown to its owner.
    status_reason: str | None = Field(default=None, max_length=500)
    #: Keep adding rounds until the 95 % error of the mean is below this percentage.
    target_error: float | None = None
    max_iterations: int | None = None
    max_attempts: int = 3
    #: Only the owner's own nodes may run it.
    own_nodes_only: bool = False
    result: Any = Field(default=None, sa_column=sa.Column(JSONType))
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


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
        sa.Index("ix_sim_chunks_node", "node_id"),
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
    result: Any = Field(default=None, sa_column=sa.Column(JSONType))
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
    "Node",
    "NodeAccess",
    "NodeStatus",
    "SimChunk",
    "SimConfig",
    "SimJob",
    "User",
    "utcnow",
]
