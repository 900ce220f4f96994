"""Live progress: a job still running after a few seconds gets one message in its thread,
edited as it goes (the elapsed time and the last lines of its output), and one final line
when it ends; its report is posted as a new message, so the requester is notified.

The message is a ``live`` row of the outbound table (``chatops/outbound.py``): the dispatcher
only says what it should read now (``revise``); the platform's sender edits the message, at
most one edit in flight per message, the newest text winning (edits coalesce).
Settings: CHATOPS_PROGRESS_AFTER (seconds a job runs before it gets a progress message; 0, the
default, turns live progress off), CHATOPS_PROGRESS_EVERY (seconds between edits, 5). Jobs on
this host, over SSH and Slurm batch jobs (their Slurm state and queue wait, and the end of the
output file the batch run copies at each of its looks).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chatops import outbound, wakeup
from chatops.joblogs import tail
from chatops.queue import Queue
from chatops.report import live
from chatops.settings import Settings
from chatops.texts import duration

log = logging.getLogger("chatops.dispatcher")

LAST_LINES = 5
LAST_CHARS = 600


@dataclass
class Watched:
    seen_at: float  # when this dispatcher first saw it running
    rows: list[int] = field(default_factory=list)  # its live messages, one per requester
    next_at: float = 0.0


class LiveProgress:
    def __init__(self, settings: Settings, queue: Queue):
        env = settings.environ
        self.after = float(env.get("CHATOPS_PROGRESS_AFTER") or 0)
        self.every = max(1.0, float(env.get("CHATOPS_PROGRESS_EVERY") or 5))
        self.settings = settings
        self.queue = queue
        self.watched: dict[int, Watched] = {}

    @property
    def on(self) -> bool:
        return self.after > 0

    def step(self, now: float, active: Mapping[int, Any]) -> float:
        """Post or edit the progress of the running jobs that are due; when next to look."""
        if not self.on:
            return math.inf
        wake = math.inf
        for job_id, job in active.items():
            watched = self.watched.setdefault(job_id, Watched(seen_at=now,
                                                              next_at=now + self.after))
            if now < watched.next_at:
                wake = min(wake, watched.next_at)
                continue
            text = self._running(job_id, job, now - watched.seen_at)
            if not watched.rows:
                watched.rows = [
                    self.queue.add_delivery(sub.platform, live(text), channel=sub.channel,
                                            thread=sub.thread,
                                            is_direct=bool(sub.is_direct), job_id=job_id)
                    for sub in self.queue.subscribers_of(job_id)]
            else:
                for row_id in watched.rows:
                    outbound.revise(self.queue.engine, row_id, live(text))
            watched.next_at = now + self.every
            wake = min(wake, watched.next_at)
            wakeup.notify(self.settings.run_dir, "outbox")
        return wake

    def ended(self, job_id: int, job_type: str, summary: str, now: float) -> None:
        """The job's progress message becomes one line: how it ended."""
        watched = self.watched.pop(job_id, None)
        if watched is None or not watched.rows:
            return
        text = f"`{job_type}` (job {job_id}) {summary} after {duration(now - watched.seen_at)}."
        for row_id in watched.rows:
            outbound.revise(self.queue.engine, row_id, live(text))
        wakeup.notify(self.settings.run_dir, "outbox")

    def _running(self, job_id: int, job: Any, elapsed: float) -> str:
        text = f"`{job.job_type}` (job {job_id}) is running: {duration(elapsed)} so far."
        status = job.run.status()  # a Slurm batch job: its state and queue wait
        if status:
            text = f"`{job.job_type}` (job {job_id}): {status}."
        last = tail(job.logs.path("stdout"), LAST_LINES, LAST_CHARS).rstrip("\n")
        return f"{text}\n```\n{last}\n```" if last else text
