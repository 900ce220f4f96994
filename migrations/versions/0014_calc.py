"""Calculations from chat: the calculations, the users' approval, quota and blocks, the audit.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calculations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), unique=True),
        sa.Column("person", sa.String(200), nullable=False),
        sa.Column("cluster", sa.String(100), nullable=False),
        sa.Column("runner", sa.String(100), nullable=False),
        sa.Column("file_name", sa.String(300), nullable=False),
        sa.Column("input_bytes", sa.BigInteger, nullable=False),
        sa.Column("args", sa.Text, nullable=False),
        sa.Column("counted", sa.Boolean, nullable=False),
        sa.Column("refund_reason", sa.Text),
        sa.Column("remote_dir", sa.Text),
        sa.Column("results", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
    )
    op.create_index("ix_calculations_person", "calculations", ["person", "created_at"])
    op.create_table(
        "calc_users",
        sa.Column("person", sa.String(200), primary_key=True),
        sa.Column("display_name", sa.String(200)),
        sa.Column("approved", sa.Boolean, nullable=False),
        sa.Column("approved_by", sa.String(200)),
        sa.Column("blocked", sa.Boolean, nullable=False),
        sa.Column("block_reason", sa.Text),
        sa.Column("quota", sa.Integer),
        sa.Column("profile", sa.Text),
        sa.Column("same_as", sa.String(200), index=True),
        sa.Column("organisation", sa.String(100)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "organizations",
        sa.Column("label", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("alias", sa.String(100)),
        sa.Column("parent", sa.String(100)),
    )
    op.create_table(
        "calc_link_codes",
        sa.Column("code", sa.String(20), primary_key=True),
        sa.Column("person", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.Float, nullable=False, index=True),
        sa.Column("actor", sa.String(200)),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(200)),
        sa.Column("calc_id", sa.Integer),
        sa.Column("detail", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_table("calc_link_codes")
    op.drop_table("organizations")
    op.drop_table("calc_users")
    op.drop_index("ix_calculations_person", table_name="calculations")
    op.drop_table("calculations")
