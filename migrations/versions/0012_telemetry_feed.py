"""What the telemetry feed last heard of each cluster, for monitors whose source is Kafka.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telemetry_clusters",
        sa.Column("cluster", sa.String(100), primary_key=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("telemetry_clusters")
