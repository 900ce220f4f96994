"""Schedules (fires, pause state) and live config (processes, rejected edits).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("namespace", sa.String(100), nullable=False),
        sa.Column("schedule", sa.String(100), nullable=False),
        sa.Column("fire_at", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id")),
        sa.Column("late_by", sa.Float, nullable=False, server_default="0"),
        sa.Column("held_until", sa.Float),
        sa.Column("worker", sa.String(200)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("namespace", "schedule", "fire_at", name="uq_schedule_fires_fire"),
    )
    op.create_index("ix_schedule_fires_job_id", "schedule_fires", ["job_id"])
    op.create_table(
        "schedule_states",
        sa.Column("namespace", sa.String(100), primary_key=True),
        sa.Column("schedule", sa.String(100), primary_key=True),
        sa.Column("trigger", sa.String(300), nullable=False),
        sa.Column("anchor_at", sa.Float, nullable=False),
        sa.Column("paused_at", sa.Float),
        sa.Column("paused_by", sa.String(200)),
    )
    op.create_table(
        "processes",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("config_loaded_at", sa.Float, nullable=False),
        sa.Column("rejected_hash", sa.String(64)),
        sa.Column("stopped_at", sa.Float),
    )
    op.create_table(
        "config_rejections",
        sa.Column("config_hash", sa.String(64), primary_key=True),
        sa.Column("errors", sa.Text, nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
        sa.Column("seen_by", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    for table in ("config_rejections", "processes", "schedule_states"):
        op.drop_table(table)
    op.drop_index("ix_schedule_fires_job_id", "schedule_fires")
    op.drop_table("schedule_fires")
