"""Deliveries remember the steps already sent, so a retry or a restarted bot resumes after them.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("progress", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("progress")
