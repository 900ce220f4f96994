"""The dispatcher: claim due jobs, run them, stop them on timeout or cancel, report the end.

One thread, one selector: it sleeps until a wake-up (a new job, a cancel), a job's end (its
pidfd), or the next deadline — never in a fixed poll loop. An exception while preparing or
finishing one job fails that job, never the dispatcher.
"""

from __future__ import annotations

import json
import logging
import math
import os
import selectors
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from chatops import wakeup
from chatops.job_config import Config, JobSpec
from chatops.queue import STALE_AFTER_SECONDS, Queue
from chatops.report import describe_end, failure_report, success_report
from chatops.settings import Settings
from dispatcher.executors import Executor, RemoteExecutors, Run
from dispatcher.local import LocalExecutor, PrepareError, kill_orphan
from dispatcher.schedules import Scheduler

log = logging.getLogger("chatops.dispatcher")

HEARTBEAT_SECONDS = 2.0


@dataclass
class Active:
    run: Run
    job_type: str
    spec: JobSpec
    log_dir: Path
    deadline: float
    stop_reason: str | None = None  # "timed_out" | "cancelled" | "shutdown"
    kill_at: float | None = None
    cancelled_by: str | None = None  # who asked to cancel it, named in its report


class Dispatcher:
    def __init__(self, settings: Settings, config: Config, queue: Queue):
        self.settings = settings
        self.config = config
        self.queue = queue
        self.host = socket.gethostname()
        self.worker = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.local = LocalExecutor(settings)
        self.active: dict[int, Active] = {}
        self.stopping = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._listener: wakeup.Listener | None = None
        self._next_heartbeat = 0.0
        self._next_recovery = 0.0
        self.notify = None  # dispatcher/notify_ingest.py: Slurm notifications, made in run()
        self.schedules = Scheduler(settings, config, queue, self.worker)

    # -- lifecycle --------------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()
        wakeup.notify(self.settings.run_dir, "dispatcher")

    def reconfigure(self, config: Config) -> None:
        """A new job_configs.py (chatops/live_config.py): the next job, fire or SSH connection
        uses it; running jobs keep the spec they started with."""
        self.config = config
        if "remote" in self.__dict__:
            self.remote.reconfigure(config)
        if self.notify is not None:
            self.notify.reconfigure(config)
        self.schedules.reload(config)
        wakeup.notify(self.settings.run_dir, "dispatcher")

    def run(self) -> None:
        now = time.time()
        self.settings.writeable_dir.mkdir(parents=True, exist_ok=True)  # jobs may write there
        self.queue.register_dispatcher(self.worker, self.host, os.getpid(), now)
        self._listener = wakeup.Listener(self.settings.run_dir, "dispatcher")
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        log.info("dispatcher %s started (max %d jobs at once)", self.worker,
                 self.settings.max_concurrency)
        try:
            self._start_notify()
            self.recover()
            self.schedules.start(time.time())
            while not self.stopping.is_set():
                self.step()
            self._shutdown()
        finally:
            self._selector.unregister(self._listener)
            self._listener.close()
            self.queue.heartbeat(self.worker, stopped=True)
            if self.notify is not None:
                self.notify.close()
            if "remote" in self.__dict__:  # the cached_property was used: close its connections
                self.remote.close()

    def _start_notify(self) -> None:
        from dispatcher.notify_ingest import NotifyIngest

        try:
            self.notify = NotifyIngest(self.settings, self.config, self.queue)
            self.notify.on_chat_jobs = self._wake_runs
            self.notify.start(self.stopping)
        except Exception:  # a broken notifications config must not stop the jobs
            log.exception("Slurm notifications are off: their setup failed")
            self.notify = None

    def _wake_runs(self, job_ids: set[int]) -> None:
        """A MailProg event about these jobs came in: a Slurm batch run polls at once."""
        for job_id in job_ids:
            active = self.active.get(job_id)  # (called from the ingest thread)
            if active is not None:
                active.run.wake()

    def step(self) -> None:
        """One turn of the loop: start what is due, enforce deadlines, sleep until needed."""
        now = time.time()
        self.schedules.step(now)
        self._start_due(now)
        if self.notify is not None:
            self.notify.step(now)  # a cheap look at the spool
        if now >= self._next_heartbeat:
            self.queue.heartbeat(self.worker, now)
            self._next_heartbeat = now + HEARTBEAT_SECONDS
        if now >= self._next_recovery:
            self.recover()
        timeout = self._sleep_time(time.time())
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                self._listener.drain()
                self._handle_cancels()
            else:
                self._reap(key.data)
        self._enforce_deadlines(time.time())

    def _sleep_time(self, now: float) -> float:
        wake = [now + self.settings.poll_interval, self._next_heartbeat, self._next_recovery,
                self.schedules.next_due or math.inf]
        for active in self.active.values():
            wake.append(active.kill_at or active.deadline)
        if self._busy() < self.settings.max_concurrency:
            due = self.queue.next_start(now)
            if due is not None:
                wake.append(due)
        return max(0.0, min(wake) - now)

    # -- starting ---------------------------------------------------------------------------

    def _busy(self) -> int:
        """Jobs using this machine; tracking a Slurm batch job (``idle_wait``) does not count."""
        return sum(not a.run.idle_wait for a in self.active.values())

    def _start_due(self, now: float) -> None:
        while self._busy() < self.settings.max_concurrency and not self.stopping.is_set():
            row = self.queue.claim(self.worker, now)
            if row is None:
                return
            try:
                self._start(row, now)
            except Exception as exc:  # one bad job must not stop the others
                log.exception("job %s could not be started", row.id)
                what = (f"could not be started: {exc}" if isinstance(exc, PrepareError)
                        else f"could not be started: {type(exc).__name__}: {exc}")
                self._finish_unstarted(row, what)

    def _start(self, row, now: float) -> None:
        spec = self.config.job(row.job_type)
        if spec is None:
            raise PrepareError(f"job type {row.job_type!r} is no longer in job_configs.py")
        namespace = self.config.namespaces[spec.namespace]
        log_dir = self.settings.job_log_dir(row.namespace, row.job_type, row.id)
        log_dir.mkdir(parents=True, exist_ok=True)
        args = json.loads(row.args)
        run = self.executor_for(spec).start(row.id, spec, args, log_dir,
                                            has_fabfile=bool(namespace.fabfile))
        self._watch(row.id, Active(run=run, job_type=row.job_type, spec=spec, log_dir=log_dir,
                                   deadline=now + row.timeout))
        log.info("job %s (%s) started, %s", row.id, row.job_type, run.label)

    def _watch(self, job_id: int, active: Active) -> None:
        """From now on the loop wakes when this run ends, and enforces its deadline."""
        self.active[job_id] = active
        self._selector.register(active.run, selectors.EVENT_READ, job_id)

    @cached_property
    def remote(self) -> RemoteExecutors:
        """SSH pool, Slurm batch and Fabric executors, made on first use."""
        return RemoteExecutors(self.settings, self.config, self.queue, self.local, self.stopping)

    def executor_for(self, spec: JobSpec) -> Executor:
        """Where a job runs: here, unless its job or namespace names a cluster."""
        return self.remote.for_spec(spec)

    def _finish_unstarted(self, row, what: str) -> None:
        report = failure_report(row.id, row.job_type, row.namespace, "failed", what, None)
        self.queue.finish(row.id, "failed", summary=what, payload=report.to_payload())
        wakeup.notify(self.settings.run_dir, "outbox")

    # -- stopping ---------------------------------------------------------------------------

    def _handle_cancels(self) -> None:
        if not self.active:
            return
        for job_id, by in self.queue.cancel_requested(self.worker).items():
            active = self.active.get(job_id)
            if active and active.stop_reason is None:
                active.cancelled_by = by
                self._terminate(active, "cancelled", time.time())

    def _terminate(self, active: Active, reason: str, now: float) -> None:
        active.stop_reason = reason
        active.kill_at = now + self.settings.kill_grace_seconds
        active.run.signal(signal.SIGTERM)
        log.info("job %s: %s, SIGTERM sent to its process group", active.run.job_id, reason)

    def _enforce_deadlines(self, now: float) -> None:
        for active in list(self.active.values()):
            if active.kill_at is not None and now >= active.kill_at:
                active.run.signal(signal.SIGKILL)
                active.kill_at = now + 60  # wait for the kernel; don't spin
            elif active.stop_reason is None and now >= active.deadline:
                self._terminate(active, "timed_out", now)

    # -- finishing --------------------------------------------------------------------------

    def _reap(self, job_id: int) -> None:
        active = self.active.pop(job_id)
        self._selector.unregister(active.run)
        exit_code = active.run.wait()
        active.run.close()
        if active.run.handed_over:  # a Slurm job still running at a stop:
            self.queue.release(job_id, self.worker)    # the next dispatcher tracks it
            log.info("job %s (%s) handed over to the next dispatcher", job_id, active.job_type)
            return
        if active.stop_reason is not None:
            active.run.signal(signal.SIGKILL)  # whatever the job left behind in its group
        try:
            self._report(job_id, active, exit_code)
        except Exception:  # the job ran; record what we can and carry on
            log.exception("job %s: could not record its end", job_id)
            self.queue.finish(job_id, "failed", exit_code=exit_code,
                              summary="ended, but its report could not be built")

    def _report(self, job_id: int, active: Active, exit_code: int) -> None:
        spec = active.spec
        if active.stop_reason in ("timed_out", "cancelled", "shutdown"):
            outcome = "failed" if active.stop_reason == "shutdown" else active.stop_reason
        else:
            outcome = "succeeded" if exit_code == 0 else "failed"
        if outcome == "succeeded":
            report = success_report(job_id, spec, active.log_dir)
            summary = "succeeded"
        else:
            what = describe_end(outcome, exit_code, spec.timeout,
                                cancelled_by=active.cancelled_by or "")
            if active.stop_reason == "shutdown":
                what = "was stopped because the dispatcher shut down"
            report = failure_report(job_id, spec.type, spec.namespace, outcome, what,
                                    active.log_dir)
            summary = what
        outcome, report = active.run.adjust_report(outcome, report, active.stop_reason, exit_code)
        report = self.schedules.annotate(job_id, report)
        summary = report.details.get("summary", summary)
        self.queue.finish(job_id, outcome, exit_code=exit_code, summary=summary,
                          payload=report.to_payload(), log_dir=str(active.log_dir))
        wakeup.notify(self.settings.run_dir, "outbox")
        log.info("job %s (%s) %s", job_id, active.job_type, summary)

    def _shutdown(self) -> None:
        """Give running jobs a grace period, then stop them and say so."""
        deadline = time.time() + self.settings.kill_grace_seconds
        for active in self.active.values():
            self._terminate(active, "shutdown", time.time())
        while self.active and time.time() < deadline + self.settings.kill_grace_seconds:
            for key, _ in self._selector.select(0.1):
                if key.data is not None:
                    self._reap(key.data)
            self._enforce_deadlines(time.time())

    # -- recovery ---------------------------------------------------------------------------

    def recover(self) -> None:
        """Take over the running jobs of dead dispatchers and those handed over at a stop.

        A Slurm batch job that was submitted is tracked again (never submitted twice); any
        other job is marked lost, its leftovers on this host killed, its requesters told.
        """
        now = time.time()
        self._next_recovery = now + STALE_AFTER_SECONDS / 2
        dead = []
        for row in self.queue.dispatchers():
            if row.id == self.worker:
                continue
            same_host_dead = row.host == self.host and not _pid_alive(row.pid)
            if same_host_dead or row.heartbeat_at < now - STALE_AFTER_SECONDS:
                dead.append(row)
        orphans = self.queue.orphaned_jobs([d.id for d in dead])
        local_dead = {d.id for d in dead if d.host == self.host}
        for job in orphans:
            if not self.queue.adopt(job.id, job.claimed_by, self.worker):
                continue  # another dispatcher took it first
            try:
                what = self._resume(job, now)
            except Exception:  # it cannot be tracked again: it is lost like any other
                log.exception("job %s: could not resume tracking it", job.id)
                what = describe_end("lost", None, job.timeout)
            if what is None:
                continue  # a Slurm job, tracked again
            log_dir = self.settings.job_log_dir(job.namespace, job.job_type, job.id)
            if job.claimed_by in local_dead:
                kill_orphan(log_dir)
            report = failure_report(job.id, job.job_type, job.namespace, "lost", what,
                                    log_dir if log_dir.is_dir() else None)
            self.queue.finish(job.id, "lost", summary=what, payload=report.to_payload(),
                              log_dir=str(log_dir), only_from=("running",))
            log.warning("job %s (%s) was lost with dispatcher %s", job.id, job.job_type,
                        job.claimed_by)
        if dead:
            self.queue.retire_dispatchers([d.id for d in dead], now)
        if orphans:
            self._handle_cancels()  # asked for while no dispatcher tracked them
            wakeup.notify(self.settings.run_dir, "outbox")

    def _resume(self, job, now: float) -> str | None:
        """Track again a Slurm batch job an earlier dispatcher submitted: None if it is
        tracked again, else why it is lost."""
        lost = describe_end("lost", None, job.timeout)
        spec = self.config.job(job.job_type)
        if spec is None or spec.slurm is None:
            return lost
        executor = self.remote.batch
        record = executor.submission(job.id)
        if record is None:
            return lost + " (it had not been submitted to Slurm)"
        if record.slurm_job_id is None and record.submit_state == "rejected":
            return lost + f" (it was not submitted: {record.error})"
        if record.slurm_job_id is None:
            return (f"was lost: the dispatcher stopped while submitting it to Slurm, so it may "
                    f"have been submitted as `chatops-{job.id}` on cluster {spec.cluster} (check "
                    f"`squeue -n chatops-{job.id}`); it is not submitted again")
        log_dir = self.settings.job_log_dir(job.namespace, job.job_type, job.id)
        log_dir.mkdir(parents=True, exist_ok=True)
        run = executor.resume(job.id, spec, log_dir, record)
        self._watch(job.id, Active(run=run, job_type=job.job_type, spec=spec, log_dir=log_dir,
                                   deadline=(job.started_at or now) + job.timeout))
        log.info("job %s (%s): tracking Slurm job %s again (it was %s's)", job.id,
                 job.job_type, record.slurm_job_id, job.claimed_by or "handed over")
        return None


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
