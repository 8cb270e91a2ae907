"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 09:30:54.483335
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sim_configs",
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("engine", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("hash"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "friendships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=False),
        sa.Column("addressee_id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("status in ('pending', 'accepted')", name="ck_friend_status_valid"),
        sa.CheckConstraint("requester_id <> addressee_id", name="ck_not_self"),
        sa.ForeignKeyConstraint(["addressee_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["requester_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("requester_id", "addressee_id", name="uq_friendship_pair"),
    )
    with op.batch_alter_table("friendships", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_friendships_addressee_id"), ["addressee_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_friendships_requester_id"), ["requester_id"], unique=False
        )

    op.create_table(
        "guilds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("claim_code", sqlmodel.sql.sqltypes.AutoString(length=6), nullable=True),
        sa.Column("claim_expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("max_parallel", sa.Integer(), nullable=False),
        sa.Column("cores", sa.Integer(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("iterations_per_second", sa.Float(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("claimed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.CheckConstraint("status in ('pending', 'online', 'offline')", name="ck_status_valid"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("claim_code"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nodes_user_id"), ["user_id"], unique=False)

    op.create_table(
        "sim_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.Column("engine", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("total_iterations", sa.Integer(), nullable=False),
        sa.Column("completed_iterations", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("target_error", sa.Float(), nullable=True),
        sa.Column("max_iterations", sa.Integer(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("own_nodes_only", sa.Boolean(), nullable=False),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status in ('pending', 'running', 'completed', 'failed', 'cancelled')",
            name="ck_status_valid",
        ),
        sa.CheckConstraint("total_iterations > 0", name="ck_total_iterations_positive"),
        sa.ForeignKeyConstraint(
            ["config_hash"],
            ["sim_configs.hash"],
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sim_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_sim_jobs_status", ["status"], unique=False)
        batch_op.create_index("ix_sim_jobs_user_status", ["user_id", "status"], unique=False)

    op.create_table(
        "guild_members",
        sa.Column("guild_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("role in ('owner', 'member')", name="ck_role_valid"),
        sa.ForeignKeyConstraint(["guild_id"], ["guilds.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("guild_id", "user_id"),
    )
    with op.batch_alter_table("guild_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guild_members_user_id"), ["user_id"], unique=False)

    op.create_table(
        "node_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("access_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "access_type in ('owner', 'user', 'friends', 'guild', 'public')",
            name="ck_access_type_valid",
        ),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node_id", "access_type", "target_id", name="uq_node_access_grant"),
    )
    with op.batch_alter_table("node_access", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_node_access_node_id"), ["node_id"], unique=False)
        batch_op.create_index("ix_node_access_target", ["access_type", "target_id"], unique=False)

    op.create_table(
        "sim_chunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=True),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.Column("iterations", sa.Integer(), nullable=False),
        sa.Column("seed_offset", sa.BigInteger(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("expirations", sa.Integer(), nullable=False),
        sa.Column("lease_token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("lease_expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("leased_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("completed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status in ('pending', 'leased', 'completed', 'failed', 'cancelled')",
            name="ck_status_valid",
        ),
        sa.ForeignKeyConstraint(
            ["config_hash"],
            ["sim_configs.hash"],
        ),
        sa.ForeignKeyConstraint(["job_id"], ["sim_jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "seed_offset", name="uq_chunk_job_offset"),
    )
    with op.batch_alter_table("sim_chunks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sim_chunks_leased",
            ["lease_expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'leased'"),
            sqlite_where=sa.text("status = 'leased'"),
        )
        batch_op.create_index("ix_sim_chunks_node", ["node_id"], unique=False)
        batch_op.create_index(
            "ix_sim_chunks_pending",
            ["job_id", "seed_offset"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )

    op.create_table(
        "chunk_leases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chunk_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=True),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("leased_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["chunk_id"], ["sim_chunks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("chunk_leases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_chunk_leases_chunk_token", ["chunk_id", "token_hash"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_chunk_leases_node_id"), ["node_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chunk_leases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chunk_leases_node_id"))
        batch_op.drop_index("ix_chunk_leases_chunk_token")

    op.drop_table("chunk_leases")
    with op.batch_alter_table("sim_chunks", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_sim_chunks_pending",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index("ix_sim_chunks_node")
        batch_op.drop_index(
            "ix_sim_chunks_leased",
            postgresql_where=sa.text("status = 'leased'"),
            sqlite_where=sa.text("status = 'leased'"),
        )

    op.drop_table("sim_chunks")
    with op.batch_alter_table("node_access", schema=None) as batch_op:
        batch_op.drop_index("ix_node_access_target")
        batch_op.drop_index(batch_op.f("ix_node_access_node_id"))

    op.drop_table("node_access")
    with op.batch_alter_table("guild_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guild_members_user_id"))

    op.drop_table("guild_members")
    with op.batch_alter_table("sim_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_sim_jobs_user_status")
        batch_op.drop_index("ix_sim_jobs_status")

    op.drop_table("sim_jobs")
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nodes_user_id"))

    op.drop_table("nodes")
    op.drop_table("guilds")
    with op.batch_alter_table("friendships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_friendships_requester_id"))
        batch_op.drop_index(batch_op.f("ix_friendships_addressee_id"))

    op.drop_table("friendships")
    op.drop_table("users")
    op.drop_table("sim_configs")
