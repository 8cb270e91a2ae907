"""iteration cost of configs and jobs, events per second of nodes (volunteers protected)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("events_per_second", sa.Float(), nullable=True))
    for table in ("sim_configs", "sim_jobs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("seconds_per_iteration", sa.Float(), nullable=True))
            batch_op.add_column(sa.Column("events_per_iteration", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in ("sim_jobs", "sim_configs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("events_per_iteration")
            batch_op.drop_column("seconds_per_iteration")
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_column("events_per_second")
