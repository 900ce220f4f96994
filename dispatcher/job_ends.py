"""A dispatcher turn's job ends: each ended run's report, and the ends (with the processes the
turn started) recorded in one transaction at the turn's end, held in memory while the database
cannot store them (a job's end is never lost to a full disk)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from chatops import storage, wakeup
from chatops.queue import Finish, Queue
from chatops.report import Report, describe_end, failure_report, success_report
from dispatcher.executors import Active
from dispatcher.local import PrepareError

log = logging.getLogger("chatops.dispatcher")


class Ends:
    """What this turn ended and started, recorded by ``record``."""

    def __init__(self, queue: Queue, outage: storage.Outage, run_dir: Path):
        self.queue = queue
        self.outage = outage
        self.run_dir = run_dir
        self.finishes: list[Finish] = []  # the ends to record, with their reports
        self.processes: list[tuple[int, int, int | None]] = []  # local jobs started this turn

    def record(self) -> bool:
        """Record the held starts and ends; False when the database cannot store them now (they
        stay held: a job's end is never lost to a full disk)."""
        if not (self.finishes or self.processes):
            return True
        finishes, self.finishes = self.finishes, []
        processes, self.processes = self.processes, []
        try:
            self.queue.finish_many(finishes, processes=processes)
        except Exception as exc:
            if self.outage.failed(exc):
                self.finishes[:0], self.processes[:0] = finishes, processes
                return False
            # one bad row must not lose the others' reports: one at a time
            log.exception("recording %d job ends at once failed; recording them one by one",
                          len(finishes))
            for end in finishes:
                try:
                    self.queue.finish_many([end])
                except Exception:
                    log.exception("job %s: could not record its end", end.job_id)
        if finishes:
            wakeup.notify(self.run_dir, "outbox")
        return True


def unstarted(job_id: int, job_type: str, namespace: str, exc: BaseException) -> Finish:
    """The end of a job that could not be started."""
    what = (f"could not be started: {exc}" if isinstance(exc, PrepareError | OSError)
            else f"could not be started: {type(exc).__name__}: {exc}")
    report = failure_report(job_id, job_type, namespace, "failed", what, None)
    return Finish(job_id, "failed", summary=what, payload=report.to_payload())


def ended(job_id: int, active: Active, exit_code: int,
          annotate: Callable[[int, Report], Report]) -> Finish:
    """The end of a run that exited: its outcome and report (``annotate``: the scheduler's
    note of the fire that queued it)."""
    spec = active.spec
    if active.stop_reason in ("timed_out", "cancelled", "shutdown"):
        outcome = "failed" if active.stop_reason == "shutdown" else active.stop_reason
    else:
        outcome = "succeeded" if exit_code == 0 else "failed"
    if outcome == "succeeded":
        report = success_report(job_id, spec, active.logs)
        summary = "succeeded"
    else:
        what = describe_end(outcome, exit_code, spec.timeout,
                            cancelled_by=active.cancelled_by or "")
        if active.stop_reason == "shutdown":
            what = "was stopped because the dispatcher shut down"
        report = failure_report(job_id, spec.type, spec.namespace, outcome, what, active.logs)
        summary = what
    outcome, report = active.run.adjust_report(outcome, report, active.stop_reason, exit_code)
    report = annotate(job_id, report)
    summary = report.details.get("summary", summary)
    log.info("job %s (%s) %s", job_id, active.job_type, summary)
    return Finish(job_id, outcome, exit_code=exit_code, summary=summary,
                  payload=report.to_payload(), log_dir=str(active.logs.folder))
