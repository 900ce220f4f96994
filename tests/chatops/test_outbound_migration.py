"""Migration 0013: the notifications table folds into the one outbound table."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import inspect, text

from chatops import migrate, outbound
from chatops.db import make_engine


def test_queued_notifications_and_failed_deliveries_survive_the_upgrade(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'chatops.db'}")
    migrate.upgrade(engine, "0012")
    slack = json.dumps({"text": "Slurm job 7 ended", "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Slurm job 7 ended*"}}]})
    mail = json.dumps({"subject": "Slurm job 8 failed", "text": "Slurm job 8 failed: FAILED",
                       "html": "<p>x</p>"})
    with engine.begin() as conn:
        for connector, target, payload, state in (
                ("slack", "C1", slack, "pending"), ("mailto", "a@uni.example", mail, "dead"),
                ("telegram", "42", json.dumps({"text": "done"}), "delivered")):
            conn.execute(text(
                "INSERT INTO notifications (event_id, connector, target, cluster_user, payload, "
                "state, attempts, next_attempt_at, last_error, created_at) VALUES ('e1', :c, :t, "
                "'alice', :p, :s, 2, 1.0, 'HTTP 500', 1.0)"),
                {"c": connector, "t": target, "p": payload, "s": state})
        conn.execute(text(
            "INSERT INTO deliveries (platform, channel, is_direct, payload, state, attempts, "
            "next_attempt_at, created_at) VALUES ('telegram', '42', 0, '{}', 'failed', 5, 1, 1)"))
    migrate.upgrade(engine)
    assert "notifications" not in inspect(engine).get_table_names()
    rows = {(r.platform, r.channel): r for r in outbound.listing(engine)}
    assert set(rows) == {("slack", "C1"), ("mailto", "a@uni.example"), ("telegram", "42")}
    moved = rows[("slack", "C1")]
    assert (moved.state, moved.attempts, moved.cluster_user, moved.event_id) == (
        "pending", 2, "alice", "e1")
    assert json.loads(moved.payload) == {"kind": "notice", "text": "*Slurm job 7 ended*"}
    assert json.loads(rows[("mailto", "a@uni.example")].payload)["text"] == (
        "Slurm job 8 failed: FAILED")
    assert rows[("telegram", "42")].state == "dead"  # "failed" is now a dead letter
    assert outbound.counts(engine) == {"pending": 1, "dead": 2}
