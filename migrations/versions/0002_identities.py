"""Platform identities, notification opt-ins, and remembered GitHub deliveries.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("platform", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("display_name", sa.String(200)),
        sa.Column("cluster_user", sa.String(100)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("platform", "user_id", name="uq_identities_platform_user"),
    )
    op.create_index("ix_identities_cluster_user", "identities", ["cluster_user"])
    op.create_table(
        "notification_targets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("connector", sa.String(40), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("user_id", sa.String(200)),
        sa.Column("cluster_user", sa.String(100)),
        sa.Column("opted_in_at", sa.Float, nullable=False),
        sa.Column("opted_out_at", sa.Float),
        sa.UniqueConstraint("connector", "target", name="uq_targets_connector_target"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", sa.String(100), primary_key=True),
        sa.Column("namespace", sa.String(100), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id")),
    )


def downgrade() -> None:
    for table in ("webhook_deliveries", "notification_targets", "identities"):
        op.drop_table(table)
