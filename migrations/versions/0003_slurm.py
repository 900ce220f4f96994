"""Slurm batch submissions: recorded before sbatch is sent, so nothing is submitted twice.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slurm_submissions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("cluster", sa.String(100), nullable=False),
        sa.Column("submit_state", sa.String(20), nullable=False),
        sa.Column("slurm_job_id", sa.Integer),
        sa.Column("script_path", sa.Text),
        sa.Column("output_path", sa.Text),
        sa.Column("slurm_state", sa.String(40)),
        sa.Column("exit_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("submitted_at", sa.Float),
        sa.Column("ended_at", sa.Float),
        sa.UniqueConstraint("job_id", name="uq_slurm_submissions_job"),
    )
    op.create_index("ix_slurm_submissions_slurm_job", "slurm_submissions",
                    ["cluster", "slurm_job_id"])


def downgrade() -> None:
    op.drop_index("ix_slurm_submissions_slurm_job", table_name="slurm_submissions")
    op.drop_table("slurm_submissions")
