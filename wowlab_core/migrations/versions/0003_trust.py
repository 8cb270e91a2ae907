"""trust: leases that always end, result verification, node capabilities, notices

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 19:21:23
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
CHUNK_STATUSES_OLD = "'pending', 'leased', 'completed', 'failed', 'cancelled'"
CHUNK_STATUSES_NEW = "'pending', 'leased', 'verify', 'completed', 'failed', 'cancelled'"


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("message", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("node_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("read_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["sim_jobs.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notices_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("chunk_leases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )

    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("engines", JSON, nullable=True))
        batch_op.add_column(sa.Column("labels", JSON, nullable=True))
        batch_op.add_column(
            sa.Column("trust_score", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("flagged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("flag_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )

    with op.batch_alter_table("sim_chunks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lease_deadline_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("progress", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("computed_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("verified_by", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("verify_state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.add_column(sa.Column("alt_result", JSON, nullable=True))
        batch_op.add_column(sa.Column("alt_node_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_sim_chunks_computed_by", ["computed_by"], unique=False)
        batch_op.create_index(
            "ix_sim_chunks_verify",
            ["job_id", "seed_offset"],
            unique=False,
            postgresql_where=sa.text("status = 'verify'"),
            sqlite_where=sa.text("status = 'verify'"),
        )
        for column in ("computed_by", "verified_by", "alt_node_id"):
            batch_op.create_foreign_key(
                f"fk_sim_chunks_{column}_nodes", "nodes", [column], ["id"], ondelete="SET NULL"
            )
        batch_op.drop_constraint("ck_status_valid", type_="check")
        batch_op.create_check_constraint("ck_status_valid", f"status in ({CHUNK_STATUSES_NEW})")
    # Chunks completed before this revision were computed by the node that holds them.
    op.execute(
        "UPDATE sim_chunks SET computed_by = node_id WHERE status = 'completed' "
        "AND node_id IS NOT NULL"
    )

    with op.batch_alter_table("sim_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("engine_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("allow_public", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("sim_jobs", schema=None) as batch_op:
        batch_op.drop_column("allow_public")
        batch_op.drop_column("engine_version")

    op.execute("UPDATE sim_chunks SET status = 'pending' WHERE status = 'verify'")
    with op.batch_alter_table("sim_chunks", schema=None) as batch_op:
        batch_op.drop_constraint("ck_status_valid", type_="check")
        batch_op.create_check_constraint("ck_status_valid", f"status in ({CHUNK_STATUSES_OLD})")
        for column in ("computed_by", "verified_by", "alt_node_id"):
            batch_op.drop_constraint(f"fk_sim_chunks_{column}_nodes", type_="foreignkey")
        batch_op.drop_index(
            "ix_sim_chunks_verify",
            postgresql_where=sa.text("status = 'verify'"),
            sqlite_where=sa.text("status = 'verify'"),
        )
        batch_op.drop_index("ix_sim_chunks_computed_by")
        batch_op.drop_column("alt_node_id")
        batch_op.drop_column("alt_result")
        batch_op.drop_column("verify_state")
        batch_op.drop_column("verified_by")
        batch_op.drop_column("computed_by")
        batch_op.drop_column("progress")
        batch_op.drop_column("lease_deadline_at")

    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_column("flag_reason")
        batch_op.drop_column("flagged_at")
        batch_op.drop_column("trust_score")
        batch_op.drop_column("labels")
        batch_op.drop_column("engines")

    with op.batch_alter_table("chunk_leases", schema=None) as batch_op:
        batch_op.drop_column("outcome")

    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_user_id"))
    op.drop_table("notices")
