"""A chat-submitted Slurm job ends in one message in each requester's thread.

Two things say that such a job ended: Slurm's end event (through the MailProg; the ingest
gathers statistics first, which can take seconds) and the dispatcher's report. Whichever comes
first is posted; the other completes it or is dropped:

- the end event first: its notice is a ``live`` message marked ``end_of`` (the job id). The
  report, when it comes, drops that notice if it was not sent yet; if it was (or is being)
  sent, the notice is edited into the report's text and the report's own row is dropped.
- the report first: the end notice is dropped (the report already gives the Slurm state, exit
  code and efficiency).

Begin, requeue and time-limit notices come before the end: one that arrives after it is
dropped. Both sides lock the job's row first (the dispatcher's finish updates it; the ingest
touches it), so they never both decide that they came first.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from chatops.db import deliveries, jobs
from chatops.redact import redacted_json
from chatops.report import live, notice

if TYPE_CHECKING:
    from chatops.queue import Queue

log = logging.getLogger("chatops.notify")

_d = deliveries


def end_notice(job_id: int, text: str) -> dict[str, Any]:
    """The thread's end notice: a message the report can still edit."""
    return {**live(text), "end_of": job_id}


def tell_thread(queue: Queue, job_id: int, sub: Any, text: str, is_end: bool) -> bool:
    """Queue a Slurm event's notice in one requester's thread, unless that thread has heard
    of the job's end already (its report, or an end notice); False when dropped."""
    with queue.atomic() as conn:
        # Lock the job's row: the dispatcher's finish updates it in the transaction that
        # queues the report, so one of the two always sees the other's rows.
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(state=jobs.c.state))
        if _ended(conn, job_id, sub):
            log.info("job %s: the end was told in %s:%s already; the %s notice is dropped",
                     job_id, sub.platform, sub.channel, "end" if is_end else "late")
            return False
        queue.add_delivery(sub.platform, end_notice(job_id, text) if is_end else notice(text),
                           channel=sub.channel, thread=sub.thread, message=sub.message,
                           is_direct=bool(sub.is_direct), job_id=job_id)
    return True


def _ended(conn: Connection, job_id: int, sub: Any) -> bool:
    rows = conn.execute(select(_d.c.payload).where(
        _d.c.job_id == job_id, _d.c.platform == sub.platform,
        _d.c.channel.is_not_distinct_from(sub.channel),
        _d.c.thread.is_not_distinct_from(sub.thread), _d.c.state != "dropped")).scalars()
    for raw in rows:
        payload = json.loads(raw)
        if payload.get("kind") == "report" or payload.get("end_of") == job_id:
            return True
    return False


# -- the dispatcher's side: in the transaction that finishes the job and queues its report ----

_ROWS = """
SELECT id, platform, channel, thread, state, payload FROM deliveries
WHERE job_id = :job_id AND state != 'dropped' ORDER BY id
"""
_DROP = "UPDATE deliveries SET state = 'dropped' WHERE id = :id"
_EDIT = """
UPDATE deliveries SET payload = :payload, revision = revision + 1,
    next_attempt_at = CASE WHEN state = 'delivered' THEN :now ELSE next_attempt_at END,
    state = CASE WHEN state = 'delivered' THEN 'pending' ELSE state END
WHERE id = :id
"""


def merge_report(run: Any, job_id: int, report: dict[str, Any], now: float) -> int:
    """Fold the report just queued into the job's end notices (see the module's docstring).
    ``run(sql, params)`` executes on the finishing transaction's connection. Returns how many
    end notices became the report."""
    rows = run(_ROWS, {"job_id": job_id}).fetchall()
    parsed = [(row, json.loads(row[5])) for row in rows]
    ends = [(row, p) for row, p in parsed if p.get("end_of") == job_id]
    if not ends:
        return 0
    text = report.get("text") or ""
    editable = bool(text) and report.get("format", "text") == "text" and not report.get("silent")
    merged = 0
    for end, _ in ends:
        where = end[1:4]
        if end[4] == "pending":  # never sent: the report alone says it
            run(_DROP, {"id": end[0]})
        elif end[4] in ("sending", "delivered") and editable:
            run(_EDIT, {"id": end[0], "now": now,
                        "payload": redacted_json(end_notice(job_id, text))})
            for row, p in parsed:
                if p.get("kind") == "report" and row[1:4] == where and row[4] == "pending":
                    run(_DROP, {"id": row[0]})
            merged += 1
    return merged
