"""the chunks a node holds, by node: an index that does not grow with its history

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 02:30:00.000000

A lease call counts a node's outstanding leases and a heartbeat reads them; through
``ix_sim_chunks_node`` both walked every chunk the node ever ran. Leased chunks (and
cancelled ones the node was not told of yet) are exactly those with a lease token.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sim_chunks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sim_chunks_held",
            ["node_id"],
            unique=False,
            postgresql_where=sa.text("lease_token_hash IS NOT NULL"),
            sqlite_where=sa.text("lease_token_hash IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("sim_chunks", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_sim_chunks_held",
            postgresql_where=sa.text("lease_token_hash IS NOT NULL"),
            sqlite_where=sa.text("lease_token_hash IS NOT NULL"),
        )
