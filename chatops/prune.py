"""Retention: ``chatops prune --older-than 90d`` removes what old jobs left behind.

It removes the log files (and a calculation's result files, which then says so, unless a
download link to them still works: chatops/calc/links.py) of jobs that ended before the cut-off
and the delivered outbound
messages (job reports, notices, Slurm notifications) sent before it. It never deletes a job's
row, nor anything kept as a record (who asked for what, suppressions, webhook deliveries,
messages that failed): a job keeps its row, and its page and `logs` say its logs were pruned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from chatops.calc.config import NAMESPACE as CALC_NAMESPACE
from chatops.calc.files import results_dir
from chatops.calc.store import links_until, remove_results
from chatops.db import END_STATES, deliveries, jobs, reading
from chatops.joblogs import job_logs, record_pruned
from chatops.queue import Queue
from chatops.settings import Settings

# The outbound table (reports, notices, Slurm notifications: chatops/outbound.py), and the
# states of a row that has done its work (sent, or counted in a suppression summary).
OUTBOUND = ((deliveries, ("delivered", "summarised")),)


@dataclass(frozen=True)
class Pruned:
    ended_before: float
    jobs: int  # jobs whose log files were removed
    bytes: int
    messages: int  # delivered outbound rows deleted
    kept: int = 0  # calculations whose result files a download link still needs


def prune(settings: Settings, queue: Queue, older_than: float, *, dry_run: bool = False,
          now: float | None = None) -> Pruned:
    """Remove the logs of jobs ended more than ``older_than`` seconds ago and the delivered
    messages sent before then (``dry_run``: only count them)."""
    now = time.time() if now is None else now
    cutoff = now - older_than
    with reading(queue.engine) as conn:
        ended = conn.execute(select(jobs.c.id, jobs.c.namespace, jobs.c.job_type,
                                    jobs.c.log_dir, jobs.c.finished_at)
                             .where(jobs.c.state.in_(END_STATES),
                                    jobs.c.finished_at < cutoff)).all()
    removed = size = kept = 0
    for job in ended:
        if job.namespace == CALC_NAMESPACE:  # a calculation's result files go too
            held = _results(settings, queue, job.id, now, dry_run)
            kept += held is None
            size += held or 0
        logs = job_logs(settings.logs_dir, job)
        if not logs.files() and not (logs.own_folder and logs.folder.is_dir()):
            continue  # nothing left of it (pruned before, or it wrote nothing)
        size += logs.size()
        removed += 1
        if not dry_run:
            logs.remove()
    messages = 0
    with queue.engine.begin() as conn:
        for table, done in OUTBOUND:
            sent_at = func.coalesce(table.c.delivered_at, table.c.created_at)
            old = (table.c.state.in_(done), sent_at < cutoff)
            if dry_run:
                messages += conn.execute(select(func.count()).select_from(table)
                                         .where(*old)).scalar() or 0
            else:
                messages += conn.execute(delete(table).where(*old)).rowcount
    if not dry_run:
        record_pruned(settings.logs_dir, cutoff, now)
    return Pruned(ended_before=cutoff, jobs=removed, bytes=size, messages=messages, kept=kept)


def prune_results(settings: Settings, queue: Queue, older_than: float, *,
                  now: float | None = None) -> int:
    """Only calculations' result files, of those ended more than ``older_than`` seconds ago
    (``calculations = {"keep_results": ...}``: the dispatcher's own retention,
    dispatcher/calc_retention.py); how many calculations' files were removed."""
    now = time.time() if now is None else now
    with reading(queue.engine) as conn:
        ended = conn.execute(select(jobs.c.id).where(
            jobs.c.namespace == CALC_NAMESPACE, jobs.c.state.in_(END_STATES),
            jobs.c.finished_at < now - older_than)).scalars().all()
    removed = 0
    for job_id in ended:
        if results_dir(settings, job_id).is_dir() \
                and _results(settings, queue, job_id, now) is not None:
            removed += 1
    return removed


def _results(settings: Settings, queue: Queue, job_id: int, now: float,
             dry_run: bool = False) -> int | None:
    """Remove a calculation's result files: the bytes they held, or None when a download link
    to them still works (chatops/calc/links.py) and they stay."""
    if links_until(queue.engine, job_id) > now:
        return None
    return remove_results(settings, queue.engine, job_id, dry_run=dry_run, now=now)
