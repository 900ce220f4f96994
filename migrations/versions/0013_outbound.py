"""One outbound table: Slurm notifications become rows of ``deliveries``.

``deliveries`` gains ``event_id`` and ``cluster_user`` (the per-user cap counts them); rows of
``notifications`` still to be sent (or dead-lettered, or held by the cap) move over as notices
with their rendered text, and the table goes. ``revision`` counts the edits of a message that
changes (live progress): a send marks it delivered only if no edit came meanwhile. A delivery
that failed for good is now "dead", like a dead-lettered notification, so one command lists and
retries both.

Revision ID: 0013
Revises: 0012
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

MOVED_STATES = ("pending", "dead", "suppressed")


def _text(payload: str) -> str:
    try:
        data = json.loads(payload)
    except ValueError:
        return payload
    for block in data.get("blocks") or ():  # Slack keeps the message in its blocks
        text = (block.get("text") or {}).get("text")
        if text:
            return text
    return str(data.get("text") or data.get("subject") or "")


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("event_id", sa.String(100)))
        batch.add_column(sa.Column("cluster_user", sa.String(100)))
        batch.add_column(sa.Column("revision", sa.Integer, nullable=False, server_default="0"))
        batch.create_index("ix_deliveries_user", ["cluster_user", "created_at"])
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE deliveries SET state = 'dead' WHERE state = 'failed'"))
    rows = conn.execute(sa.text(
        "SELECT event_id, connector, target, cluster_user, payload, state, attempts, "
        "next_attempt_at, last_error, created_at FROM notifications WHERE state IN "
        "('pending', 'dead', 'suppressed', 'sending')")).all()
    insert = sa.text(
        "INSERT INTO deliveries (platform, channel, is_direct, payload, state, attempts, "
        "next_attempt_at, last_error, created_at, event_id, cluster_user) VALUES (:platform, "
        ":channel, :direct, :payload, :state, :attempts, :next, :error, :created, :event, "
        ":user)")
    for row in rows:
        state = "pending" if row.state == "sending" else row.state
        conn.execute(insert, {
            "platform": row.connector, "channel": row.target, "direct": False,
            "payload": json.dumps({"kind": "notice", "text": _text(row.payload)}),
            "state": state, "attempts": row.attempts, "next": row.next_attempt_at,
            "error": row.last_error, "created": row.created_at, "event": row.event_id,
            "user": row.cluster_user})
    op.drop_table("notifications")


def downgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.String(100)),
        sa.Column("connector", sa.String(40), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("cluster_user", sa.String(100)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.Float),
    )
    op.create_index("ix_notifications_state", "notifications", ["state", "next_attempt_at"])
    op.create_index("ix_notifications_user", "notifications", ["cluster_user", "created_at"])
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE deliveries SET state = 'failed' WHERE state = 'dead'"))
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_user")
        batch.drop_column("revision")
        batch.drop_column("cluster_user")
        batch.drop_column("event_id")
