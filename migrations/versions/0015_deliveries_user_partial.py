"""The per-user index of deliveries holds only Slurm notifications (the rows with a cluster
user): a job's report no longer writes an index page that no query reads.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_ONLY_USERS = sa.text("cluster_user IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_deliveries_user", "deliveries")
    op.create_index("ix_deliveries_user", "deliveries", ["cluster_user", "created_at"],
                    sqlite_where=_ONLY_USERS, postgresql_where=_ONLY_USERS)


def downgrade() -> None:
    op.drop_index("ix_deliveries_user", "deliveries")
    op.create_index("ix_deliveries_user", "deliveries", ["cluster_user", "created_at"])
