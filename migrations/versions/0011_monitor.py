"""The cluster monitor: leases (one poller per cluster), latest state, history, status boards.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_leases",
        sa.Column("cluster", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("taken_at", sa.Float, nullable=False),
    )
    op.create_table(
        "monitor_states",
        sa.Column("cluster", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("polled_at", sa.Float, nullable=False),
        sa.Column("poll_seconds", sa.Float),
        sa.Column("polled_by", sa.String(200)),
        sa.Column("first_polled_at", sa.Float, nullable=False),
    )
    op.create_table(
        "monitor_transitions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("cluster", sa.String(100), nullable=False),
        sa.Column("node", sa.String(200)),
        sa.Column("from_state", sa.String(40)),
        sa.Column("to_state", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_monitor_transitions_cluster_at", "monitor_transitions",
                    ["cluster", "at"])
    op.create_table(
        "monitor_boards",
        sa.Column("cluster", sa.String(100), primary_key=True),
        sa.Column("target", sa.String(300), primary_key=True),
        sa.Column("delivery_id", sa.Integer),
        sa.Column("posted_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_monitor_transitions_cluster_at", "monitor_transitions")
    for table in ("monitor_boards", "monitor_transitions", "monitor_states", "monitor_leases"):
        op.drop_table(table)
