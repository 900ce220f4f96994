"""The queue: jobs, subscribers, suppressions, deliveries, dispatchers.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PENDING = "state = 'queued'"
RUNNING = "state = 'running'"


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("namespace", sa.String(100), nullable=False),
        sa.Column("job_type", sa.String(200), nullable=False),
        sa.Column("args", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("timeout", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("start_after", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("platform", sa.String(40)),
        sa.Column("channel", sa.String(200)),
        sa.Column("thread", sa.String(200)),
        sa.Column("requested_by", sa.String(200)),
        sa.Column("message", sa.String(200)),
        sa.Column("is_direct", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("log_dir", sa.Text),
        sa.Column("summary", sa.Text),
        sa.Column("delivery_error", sa.Text),
    )
    # Partial indexes: only queued and running rows are indexed, so the indexes stay small
    # however long the history grows, and a finished job costs no index maintenance.
    op.create_index("ix_jobs_queued", "jobs", ["start_after", "id"],
                    sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))
    op.create_index("ix_jobs_running", "jobs", ["job_type"],
                    sqlite_where=sa.text(RUNNING), postgresql_where=sa.text(RUNNING))
    op.create_index("ux_jobs_pending", "jobs", ["job_type", "args"], unique=True,
                    sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("platform", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(200)),
        sa.Column("thread", sa.String(200)),
        sa.Column("user", sa.String(200)),
        sa.Column("message", sa.String(200)),
        sa.Column("is_direct", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_subscribers_job_id", "subscribers", ["job_id"])
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_type", sa.String(200), nullable=False),
        sa.Column("start_at", sa.Float, nullable=False),
        sa.Column("end_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_suppressions_job_type", "suppressions", ["job_type"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id")),
        sa.Column("platform", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(200)),
        sa.Column("thread", sa.String(200)),
        sa.Column("message", sa.String(200)),
        sa.Column("is_direct", sa.Boolean, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.Float),
    )
    op.create_index("ix_deliveries_job_id", "deliveries", ["job_id"])
    op.create_index("ix_deliveries_pending", "deliveries",
                    ["platform", "state", "next_attempt_at"])
    op.create_table(
        "dispatchers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("stopped_at", sa.Float),
    )


def downgrade() -> None:
    for table in ("dispatchers", "deliveries", "suppressions", "subscribers", "jobs"):
        op.drop_table(table)
