"""The dispatcher: claim due jobs, run them, stop them on timeout or cancel, report the end.

One thread, one selector: it sleeps until a wake-up (a new job, a cancel), a job's output or end
(its pipes and pidfd), a started process, or the next deadline — never in a fixed poll loop.
Each turn claims as many due jobs as there are free slots in one transaction, hands local ones
to a small pool of threads that fork and exec them (so several starts overlap and the loop keeps
reading output), and records the processes started and the jobs ended in that turn in one
transaction. An exception while preparing or finishing one job fails that job, never the
dispatcher.
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

from chatops import alarms, privileges, storage, wakeup
from chatops.job_config import Config, JobSpec
from chatops.joblogs import JobLogs, type_folder
from chatops.queue import STALE_AFTER_SECONDS, Finish, Queue
from chatops.settings import Settings
from dispatcher import recovery
from dispatcher.calc_retention import ResultsRetention
from dispatcher.executors import Active, Executor, RemoteExecutors
from dispatcher.job_ends import Ends, ended, unstarted
from dispatcher.local import LocalExecutor, Output, PrepareError
from dispatcher.monitor import Monitors
from dispatcher.progress import LiveProgress
from dispatcher.schedules import Scheduler
from dispatcher.slurm_news import SlurmNews
from dispatcher.starters import Starters

log = logging.getLogger("chatops.dispatcher")

HEARTBEAT_SECONDS = 2.0
_STARTED = "started"  # selector key of the starter threads' wake-up pipe
MAX_LEFTOVERS = 200  # streams of ended jobs still copied (a daemon a job left holds its stdout)


@dataclass
class Starting:
    """A local job handed to a starter thread, not started yet."""

    job_type: str
    spec: JobSpec
    logs: JobLogs
    deadline: float
    cancel: bool = False  # cancelled meanwhile: stop it as soon as it exists
    cancelled_by: str | None = None


class Dispatcher:
    def __init__(self, settings: Settings, config: Config, queue: Queue):
        self.settings = settings
        self.config = config
        self.queue = queue
        self.host = socket.gethostname()
        self.worker = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.account = privileges.job_account(settings)  # who local jobs run as
        if self.account is None:
            log.warning(privileges.without_job_account())
        else:
            privileges.prepare_for_jobs(settings, self.account)
        self.local = LocalExecutor(settings, self.account)
        self.active: dict[int, Active] = {}
        self.starting: dict[int, Starting] = {}
        self.stopping = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._listener: wakeup.Listener | None = None
        self._starters: Starters | None = None  # made in run()
        self._folders: set[Path] = set()  # job types' log folders made so far
        self._ended: list[int] = []  # jobs whose run ended in this turn
        self._leftovers: dict[Output, int] = {}  # streams still open after their job ended
        self._next_heartbeat = 0.0
        self._next_recovery = 0.0
        self._claim_at = 0.0  # when a claim may find something: 0 now, inf not until a change
        # MailProg events and telemetry job records (dispatcher/slurm_news.py); broken
        # notification settings stop the start.
        self.news = SlurmNews(settings, config, queue, self._wake_runs)
        # A full disk or a read-only database: running jobs go on, their ends wait in memory.
        self.outage = storage.Outage("chatops dispatcher", (
            "no new jobs are started", "no new job was started"))
        self.ends = Ends(queue, self.outage, settings.run_dir)  # and what to record for each
        self.schedules = Scheduler(settings, config, queue, self.worker)
        self.monitors = Monitors(settings, config, queue, self.worker, lambda: self.remote.pool)
        self.progress = LiveProgress(settings, queue)  # running jobs' messages, edited
        self.retention = ResultsRetention(settings, lambda: self.config, queue)
        self._next_progress = 0.0

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
        self.news.reconfigure(config)
        self.schedules.reload(config)
        if config.monitors:
            self.remote  # noqa: B018  (made here, not raced for by the monitors' threads)
        self.monitors.reconfigure(config)
        wakeup.notify(self.settings.run_dir, "dispatcher")

    def run(self) -> None:
        now = time.time()
        if self.account is None:
            self.settings.writeable_dir.mkdir(parents=True, exist_ok=True)  # jobs write there
        self.queue.register_dispatcher(self.worker, self.host, os.getpid(), now)
        self._listener = wakeup.Listener(self.settings.run_dir, "dispatcher")
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._starters = Starters(self.local, self.settings.max_concurrency)
        self._selector.register(self._starters, selectors.EVENT_READ, _STARTED)
        log.info("dispatcher %s started (max %d jobs at once; local jobs run as %s)",
                 self.worker, self.settings.max_concurrency,
                 self.account.name if self.account else privileges.who_am_i())
        try:
            self.news.start(self.stopping)
            self.recover()
            self.schedules.start(time.time())
            if self.config.monitors:
                self.remote  # noqa: B018  (made here, not raced for by the monitors' threads)
            self.monitors.start()
            self.retention.start()
            while not self.stopping.is_set():
                self.step()
            self._shutdown()
        finally:
            for key in list(self._selector.get_map().values()):
                if isinstance(key.fileobj, Output):  # output of jobs that ended, still open
                    key.fileobj.close()
            self._selector.close()
            self._starters.close()  # (after _shutdown: nothing is starting any more)
            self._listener.close()
            self.monitors.close()
            self.retention.close()
            self._guard(self.queue.heartbeat, self.worker, stopped=True)
            self.news.close()
            if "remote" in self.__dict__:  # the cached_property was used: close its connections
                self.remote.close()

    def _wake_runs(self, job_ids: set[int]) -> None:
        """A MailProg event or a telemetry job record about these jobs came in: a Slurm batch
        run polls at once."""
        for job_id in job_ids:
            active = self.active.get(job_id)  # (called from the ingest thread)
            if active is not None:
                active.run.wake()

    def step(self) -> None:
        """One turn of the loop: start what is due, sleep until needed, handle what happened,
        then record the turn's starts and ends in one transaction."""
        now = time.time()
        fires = self.schedules.next_due
        self._guard(self.schedules.step, now)
        if fires is not None and fires <= now:  # it may have queued jobs
            self._claim_at = 0.0
        if now >= self._claim_at and not self.outage.blocked:
            self._guard(self._start_due, now)
        self._guard(self.news.step, now)  # a cheap look at the spool
        if now >= self._next_heartbeat:
            self._beat(now)
        if now >= self._next_recovery and not self.outage.blocked:
            self._guard(self.recover)
        if self.active and now >= self._next_progress and not self.outage.blocked:
            self._next_progress = now + self.settings.poll_interval  # (if the step fails)
            self._guard(self._progress, now)
        self._handle(self._selector.select(self._sleep_time(time.time())))
        self._enforce_deadlines(time.time())
        self._settle()

    def _progress(self, now: float) -> None:
        self._next_progress = self.progress.step(now, self.active)

    def _guard(self, step, *args, **kwargs) -> bool:
        """Run one part of a turn; a storage fault (chatops/storage.py) stops claiming until
        the database takes writes again, any other error is the dispatcher's end as before."""
        try:
            step(*args, **kwargs)
        except Exception as exc:
            if not self.outage.failed(exc):
                raise
            return False
        return True

    def _beat(self, now: float) -> None:
        """The heartbeat, and the look at the database's disk: while either fails no job is
        claimed; once both work, the ends held meanwhile are recorded and the admins told."""
        self._next_heartbeat = now + HEARTBEAT_SECONDS
        if not self._guard(self.queue.heartbeat, self.worker, now):
            return
        low = storage.low_space(self.queue.engine)
        if low is not None:
            self.outage.note(low)
            return
        if self.outage.blocked:
            if not self.ends.record():
                return
            self.outage.recovered()
            self._claim_at = 0.0
        self.outage.flush(lambda text: alarms.queue_notice(
            self.queue, self.config.admin_channel, text) if self.config.admin_channel else None)

    def _handle(self, events: list) -> None:
        for key, _ in events:
            if key.data is None:  # a new job, a cancel
                self._listener.drain()
                self._claim_at = 0.0
                self._handle_cancels()
            elif key.data is _STARTED:
                self._take_started()
            elif isinstance(key.data, int):
                self._ended.append(key.data)  # a run's end; reaped once this turn is over
            elif not key.data.pump():  # a job's output pipe
                self._close_output(key.data)

    def _close_output(self, output: Output) -> None:
        self._selector.unregister(output)
        output.close()
        self._leftovers.pop(output, None)

    def _sleep_time(self, now: float) -> float:
        wake = [now + self.settings.poll_interval, self._next_heartbeat,
                math.inf if self.outage.blocked else self._next_recovery,
                self.schedules.next_due or math.inf,
                self._next_progress if self.active else math.inf]
        for active in self.active.values():
            wake.append(active.kill_at or active.deadline)
        if self._busy() < self.settings.max_concurrency and not self.outage.blocked:
            wake.append(self._claim_at)
        return max(0.0, min(wake) - now)

    # -- starting ---------------------------------------------------------------------------

    def _busy(self) -> int:
        """Jobs using this machine; tracking a Slurm batch job (``idle_wait``) does not count."""
        return len(self.starting) + sum(not a.run.idle_wait for a in self.active.values())

    def _start_due(self, now: float) -> None:
        """Claim as many due jobs as there are free slots. Claims cost a write transaction, so
        the next one waits for a reason: a wake-up, a job's end, the next job's start time, or
        the poll interval (the only news from dispatchers on other hosts)."""
        free = self.settings.max_concurrency - self._busy()
        if free <= 0 or self.stopping.is_set():
            self._claim_at = float("inf")  # until a job ends (or a wake-up)
            return
        rows = self.queue.claim_many(self.worker, free, now)
        if len(rows) == free:
            self._claim_at = float("inf")
        else:  # nothing more is due now
            due = self.queue.next_start(now)
            self._claim_at = min(now + self.settings.poll_interval, due or float("inf"))
        for row in rows:
            try:
                self._start(row, now)
            except Exception as exc:  # one bad job must not stop the others
                log.exception("job %s could not be started", row.id)
                self._finish_unstarted(row.id, row.job_type, row.namespace, exc)
        if len(rows) == free and self._busy() < self.settings.max_concurrency:
            self._claim_at = 0.0  # they were Slurm batch jobs, which take no slot: claim on

    def _start(self, row, now: float) -> None:
        spec = self.config.job(row.job_type)
        if spec is None:
            raise PrepareError(f"job type {row.job_type!r} is no longer in job_configs.py")
        namespace = self.config.namespaces.get(spec.namespace)  # (none: a calculation)
        has_fabfile = bool(namespace and namespace.fabfile)
        logs = JobLogs(self.log_folder(row.namespace, row.job_type), row.id)
        args = json.loads(row.args)
        deadline = now + row.timeout
        executor = self.executor_for(spec)
        if executor is self.local:  # forked and exec'd by a starter thread
            launch = self.local.prepare(row.id, spec, args, logs, has_fabfile)
            self.starting[row.id] = Starting(row.job_type, spec, logs, deadline)
            self._starters.submit(launch)
            return
        run = executor.start(row.id, spec, args, logs, has_fabfile=has_fabfile)
        self._watch(row.id, Active(run=run, job_type=row.job_type, spec=spec, logs=logs,
                                   deadline=deadline))
        log.info("job %s (%s) started, %s", row.id, row.job_type, run.label)

    def log_folder(self, namespace: str, job_type: str) -> Path:
        """A job type's log folder, made once (with the logs tree's owner when we are root)."""
        folder = type_folder(self.settings.logs_dir, namespace, job_type)
        if folder not in self._folders:
            self.local.make_log_folder(folder)
            self._folders.add(folder)
        return folder

    def _take_started(self) -> None:
        """Watch the jobs the starter threads started (or fail those they could not)."""
        for job_id, result in self._starters.results():
            starting = self.starting.pop(job_id)
            if isinstance(result, BaseException):
                log.error("job %s could not be started: %s", job_id, result)
                self._finish_unstarted(job_id, starting.job_type, starting.spec.namespace,
                                       result)
                continue
            self.ends.processes.append((job_id, result.pid, result.pid_start))
            for output in result.outputs:
                self._selector.register(output, selectors.EVENT_READ, output)
            active = Active(run=result, job_type=starting.job_type, spec=starting.spec,
                            logs=starting.logs, deadline=starting.deadline)
            self._watch(job_id, active)
            log.info("job %s (%s) started, %s", job_id, starting.job_type, result.label)
            active.cancelled_by = starting.cancelled_by
            if starting.cancel or self.stopping.is_set():
                self._terminate(active, "cancelled" if starting.cancel else "shutdown",
                                time.time())

    def _watch(self, job_id: int, active: Active) -> None:
        """From now on the loop wakes when this run ends, and enforces its deadline."""
        self.active[job_id] = active
        self._next_progress = 0.0  # its progress message is due after a few seconds
        self._selector.register(active.run, selectors.EVENT_READ, job_id)

    @cached_property
    def remote(self) -> RemoteExecutors:
        """SSH pool, Slurm batch and Fabric executors, made on first use."""
        return RemoteExecutors(self.settings, self.config, self.queue, self.local, self.stopping)

    def executor_for(self, spec: JobSpec) -> Executor:
        """Where a job runs: here, unless its job or namespace names a cluster."""
        namespace = self.config.namespaces.get(spec.namespace)
        if spec.slurm is None and spec.cluster is None and not (namespace and namespace.fabfile):
            return self.local  # (without making the SSH pool)
        return self.remote.for_spec(spec)

    def _finish_unstarted(self, job_id: int, job_type: str, namespace: str,
                          exc: BaseException) -> None:
        self._claim_at = 0.0  # its slot is free
        self.ends.finishes.append(unstarted(job_id, job_type, namespace, exc))

    # -- stopping ---------------------------------------------------------------------------

    def _handle_cancels(self) -> None:
        if not self.active and not self.starting:
            return
        for job_id, by in self.queue.cancel_requested(self.worker).items():
            active = self.active.get(job_id)
            if active and active.stop_reason is None:
                active.cancelled_by = by
                self._terminate(active, "cancelled", time.time())
            elif job_id in self.starting:
                self.starting[job_id].cancel = True
                self.starting[job_id].cancelled_by = by

    def _terminate(self, active: Active, reason: str, now: float) -> None:
        active.stop_reason = reason
        active.kill_at = now + self.settings.kill_grace_seconds
        how = active.run.signal(signal.SIGTERM)  # a Slurm batch run says what it did instead
        log.info("job %s: %s, %s", active.run.job_id, reason,
                 how or "SIGTERM sent to its process group")

    def _enforce_deadlines(self, now: float) -> None:
        for active in list(self.active.values()):
            if active.kill_at is not None and now >= active.kill_at:
                active.run.signal(signal.SIGKILL)
                active.kill_at = now + 60  # wait for the kernel; don't spin
            elif active.stop_reason is None and now >= active.deadline:
                self._terminate(active, "timed_out", now)

    # -- finishing --------------------------------------------------------------------------

    def _settle(self) -> None:
        """Record this turn's started processes and ended jobs in one transaction."""
        for job_id in self._ended:
            self._reap(job_id)
        self._ended.clear()
        if not self.outage.blocked:  # (else the next heartbeat that works records them)
            self.ends.record()

    def _reap(self, job_id: int) -> None:
        active = self.active.pop(job_id)
        self._selector.unregister(active.run)
        self._claim_at = 0.0  # its slot is free
        exit_code = active.run.wait()
        active.run.close()
        for output in active.run.outputs:
            if output.closed:
                continue
            if not output.pump(drain=True):
                self._close_output(output)
            else:  # a process the job left behind holds the pipe: copy on until it closes
                self._leftovers[output] = job_id
        while len(self._leftovers) > MAX_LEFTOVERS:  # (each holds two file descriptors)
            output, owner = next(iter(self._leftovers.items()))
            log.warning("job %s: what its leftover processes print is no longer logged (%s "
                        "streams of ended jobs are open)", owner, MAX_LEFTOVERS)
            self._close_output(output)
        if active.run.handed_over:  # a Slurm job still running at a stop:
            self.queue.release(job_id, self.worker)    # the next dispatcher tracks it
            log.info("job %s (%s) handed over to the next dispatcher", job_id, active.job_type)
            return
        if active.stop_reason is not None:
            active.run.signal(signal.SIGKILL)  # whatever the job left behind in its group
        try:
            self.ends.finishes.append(ended(job_id, active, exit_code,
                                            self.schedules.annotate))
        except Exception:  # the job ran; record what we can and carry on
            log.exception("job %s: could not build its report", job_id)
            self.ends.finishes.append(Finish(job_id, "failed", exit_code=exit_code,
                                         summary="ended, but its report could not be built"))
        self._guard(self.progress.ended, job_id, active.job_type,
                    self.ends.finishes[-1].summary or "ended", time.time())

    def _shutdown(self) -> None:
        """Give running jobs a grace period, then stop them and say so."""
        deadline = time.time() + self.settings.kill_grace_seconds
        for active in self.active.values():
            self._terminate(active, "shutdown", time.time())
        while ((self.active or self.starting)
               and time.time() < deadline + self.settings.kill_grace_seconds):
            self._handle(self._selector.select(0.1))  # jobs still starting are stopped too
            self._enforce_deadlines(time.time())
            self._settle()
        self._settle()
        self.ends.record()  # a last try for ends held by a full disk

    # -- recovery (dispatcher/recovery.py) --------------------------------------------------

    def recover(self) -> None:
        """Take over the running jobs of dead dispatchers and those handed over at a stop."""
        self._next_recovery = time.time() + STALE_AFTER_SECONDS / 2
        if recovery.recover(self):
            self._handle_cancels()  # asked for while no dispatcher tracked them
            wakeup.notify(self.settings.run_dir, "outbox")

    def track_again(self, job_id: int, active: Active) -> None:
        """A batch job an earlier dispatcher submitted, tracked by this one from now on."""
        self._watch(job_id, active)
