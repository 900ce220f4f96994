"""Slurm notifications: events seen (for dedupe) and one row per (event, target) to send.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_events",
        sa.Column("event_id", sa.String(100), primary_key=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("cluster", sa.String(100)),
        sa.Column("slurm_job_id", sa.String(40)),
        sa.Column("cluster_user", sa.String(100)),
        sa.Column("mail_type", sa.String(40)),
        sa.Column("targets", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.String(100)),
        sa.Column("connector", sa.String(40), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("cluster_user", sa.String(100)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.Float),
    )
    op.create_index("ix_notifications_state", "notifications", ["state", "next_attempt_at"])
    op.create_index("ix_notifications_user", "notifications", ["cluster_user", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_user", table_name="notifications")
    op.drop_index("ix_notifications_state", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("notify_events")
