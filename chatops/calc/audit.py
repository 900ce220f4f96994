"""The audit of calculations: a row per event, and the same line in the audit channel.

Every registration, approval, block, limit change, submission, refusal for quota, cancellation
and completion is recorded (``record``); the line goes to ``calculations.audit_channel`` (by
default the admin channel) through the outbound path. ``export`` writes the rows as CSV or JSONL.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable
from typing import IO, Any

from sqlalchemy import insert, select

from chatops.alarms import queue_notice
from chatops.db import audit, reading

FIELDS = ("id", "at", "actor", "action", "subject", "calc_id", "detail")
# every action ``record`` is given: `chatops audit export --action` and the Audit page accept these
ACTIONS = ("registered", "profile", "submitted", "refused", "quota", "approved", "blocked",
           "unblocked", "limit", "bind", "succeeded", "failed", "cancelled", "timed_out",
           "refunded", "linked", "unlinked")


def record(queue: Any, channel: str | None, action: str, text: str, *,
           actor: str | None = None, subject: str | None = None, calc_id: int | None = None,
           now: float | None = None) -> None:
    """Record one event; tell the audit channel (when there is one)."""
    now = time.time() if now is None else now
    with queue.engine.begin() as conn:
        conn.execute(insert(audit).values(at=now, actor=actor, action=action, subject=subject,
                                          calc_id=calc_id, detail=text))
    if channel:
        queue_notice(queue, channel, f"[audit] {text}")


def rows(engine: Any, since: float, action: str | None = None) -> list[Any]:
    query = select(audit).where(audit.c.at >= since).order_by(audit.c.id)
    if action:
        query = query.where(audit.c.action == action)
    with reading(engine) as conn:
        return list(conn.execute(query))


def export(found: Iterable[Any], out: IO[str], fmt: str) -> int:
    """Write rows as ``csv`` or ``jsonl`` (times as ISO 8601, UTC); the number written."""
    from datetime import UTC, datetime

    count = 0
    writer = csv.writer(out) if fmt == "csv" else None
    if writer:
        writer.writerow(FIELDS)
    for row in found:
        values = dict(row._mapping)
        values["at"] = datetime.fromtimestamp(values["at"], UTC).isoformat(timespec="seconds")
        if writer:
            writer.writerow([values[f] for f in FIELDS])
        else:
            out.write(json.dumps({f: values[f] for f in FIELDS}) + "\n")
        count += 1
    return count
