"""what a job ran (name, fight, targets) and its public read-only link

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sim_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.add_column(sa.Column("fight_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("fight_variation", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("targets", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "share_token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("shared_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.create_index("ix_sim_jobs_share_token_hash", ["share_token_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("sim_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_sim_jobs_share_token_hash")
        batch_op.drop_column("shared_at")
        batch_op.drop_column("share_token_hash")
        batch_op.drop_column("targets")
        batch_op.drop_column("fight_variation")
        batch_op.drop_column("fight_seconds")
        batch_op.drop_column("name")
