"""The cluster account a Slurm job was submitted as (submit_as = "requester"), so that a
dispatcher tracking it again after a restart polls and cancels it as the same person.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slurm_submissions") as batch:
        batch.add_column(sa.Column("run_as", sa.String(100)))


def downgrade() -> None:
    with op.batch_alter_table("slurm_submissions") as batch:
        batch.drop_column("run_as")
