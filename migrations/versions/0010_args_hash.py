"""Pending jobs are unique by a hash of their arguments, not the arguments themselves.

PostgreSQL's btree refuses index rows over 2704 bytes, so a unique index on (job_type, args)
made long arguments fail to queue at all. ``args_hash`` (SHA-256 of the canonical JSON, see
``chatops.db.args_digest``) is computed on insert; existing rows are backfilled here.
On SQLite the column stays nullable (adding NOT NULL would rebuild the table); every insert
path sets it.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from chatops.db import args_digest

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PENDING = "state = 'queued'"
BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("args_hash", sa.String(64)))
    conn = op.get_bind()
    jobs = sa.table("jobs", sa.column("id", sa.Integer), sa.column("args", sa.Text),
                    sa.column("args_hash", sa.String))
    last = 0
    while True:
        rows = conn.execute(sa.select(jobs.c.id, jobs.c.args).where(jobs.c.id > last)
                            .order_by(jobs.c.id).limit(BATCH)).all()
        if not rows:
            break
        conn.execute(jobs.update().where(jobs.c.id == sa.bindparam("row_id"))
                     .values(args_hash=sa.bindparam("digest")),
                     [{"row_id": row.id, "digest": args_digest(row.args)} for row in rows])
        last = rows[-1].id
    if conn.dialect.name == "postgresql":
        op.alter_column("jobs", "args_hash", nullable=False)
    op.drop_index("ux_jobs_pending", "jobs")
    op.create_index("ux_jobs_pending", "jobs", ["job_type", "args_hash"], unique=True,
                    sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))


def downgrade() -> None:
    op.drop_index("ux_jobs_pending", "jobs")
    op.create_index("ux_jobs_pending", "jobs", ["job_type", "args"], unique=True,
                    sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("args_hash")
