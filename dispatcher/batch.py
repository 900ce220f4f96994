"""Slurm batch jobs from chat: submit with ``sbatch --parsable``, track, report.

A batch job's run object ends when Slurm reports a terminal state, so the dispatcher's loop,
timeouts, cancels and reports work for it unchanged: its thread submits the job over the
cluster's pooled SSH connection, tells the requesters "submitted as Slurm job N", polls
``squeue`` with a growing, jittered pause, then reads ``sacct`` for the end state, exit code,
elapsed time and efficiency, and the tail of the job's output file. A MailProg event about the job
(when the cluster's MailProg is chatops-mailprog) makes it poll at once.

Nothing is submitted twice: a ``slurm_submissions`` row is written *before* sbatch is sent
(one per chat job, unique). A second attempt for the same job finds it and refuses; an sbatch
answer without a job id, or a lost answer, is reported as a failure and never retried blindly.
A dispatcher that stops while Slurm runs the job hands it over; the next one (or any live
dispatcher, when one dies) tracks it again from its submission record and reports its end.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import random
import signal as signals
import threading
import time
from collections.abc import Mapping

import paramiko
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from chatops import wakeup
from chatops.db import slurm_submissions
from chatops.job_config import JobSpec
from chatops.joblogs import JobLogs
from chatops.queue import Queue
from chatops.report import Report, notice
from chatops.settings import Settings
from chatops.slurm.acct import AcctJob
from chatops.slurm.client import CommandResult, SlurmClient, SlurmError
from chatops.texts import duration
from dispatcher.batch_report import batch_report
from dispatcher.cluster_account import Account, Unbound, account_for
from dispatcher.local import command_line
from dispatcher.squeue_rounds import SqueueRounds
from dispatcher.ssh import ClusterConnection, ClusterUnreachable, SSHPool, describe_error
from dispatcher.threadrun import ThreadRun

TERMINAL = {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL",
            "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT"}
FIRST_POLL = 1.0
ACCOUNTING_WAIT = 20.0  # sacct can lag slurmctld by a few seconds
ACCOUNTING_COMPLETE_WAIT = 5.0
GIVE_UP_AFTER_KILL = 60.0  # after the dispatcher's SIGKILL, stop waiting for Slurm to confirm
LOG_LINES = 200  # of the output file kept as the chat job's stdout log (what `logs` shows)
LOG_BYTES = 65536  # read at most this much of the output file's end per look


class BatchRun(ThreadRun):
    idle_wait = True  # waiting for Slurm takes no dispatcher slot (max_concurrency)

    def __init__(self, executor: BatchExecutor, job_id: int, spec: JobSpec, command: str,
                 logs: JobLogs):
        super().__init__(job_id, f"Slurm batch job on cluster {spec.cluster}")
        self.executor = executor
        self.spec = spec
        self.slurm = spec.slurm
        self.command = command
        self.logs = logs
        self.connection: ClusterConnection = executor.pool.connection(spec.cluster)
        self.account = Account(self.connection)  # the person's, once main() knows them
        self.client = SlurmClient(self._run, self.connection.spec.command_timeout)
        environ = executor.settings.environ  # the job's `env`: sbatch passes it to the job
        self.env = {name: environ[name] for name in spec.env if name in environ}
        self.slurm_id: int | None = None
        self.acct: AcctJob | None = None
        self.output_tail = ""
        self.output_path = ""
        self._stop: int | None = None
        self._scancelled = False
        self._give_up_at: float | None = None
        self._slurm_state: str | None = None
        self._submitted_at: float | None = None
        self._running_at: float | None = None  # when it was first seen RUNNING
        self._wake = threading.Event()

    def _run(self, argv: list[str], timeout: float) -> CommandResult:
        env = self.env if argv[0] == "sbatch" else None
        return self.account.slurm(argv, timeout, env)

    # -- the thread -------------------------------------------------------------------------

    def main(self) -> None:
        workdir = self.workdir()
        self.output_path = posixpath.join(workdir, f"chatops-{self.job_id}.out")
        existing = self.executor.record(self.job_id, self.spec.cluster,
                                        script_path=self._script(workdir),
                                        output_path=self.output_path)
        if existing is not None:
            self.error = (f"was already submitted as Slurm job {existing.slurm_job_id}; it is "
                          "not submitted again" if existing.slurm_job_id else
                          f"has a submission record already ({existing.submit_state}); it is "
                          "not submitted again — check `squeue -n chatops-{self.job_id}`")
            return
        if self._stop is not None:
            self.executor.update(self.job_id, submit_state="rejected",
                                 error="cancelled before it was submitted")
            self.exit_code = -self._stop
            return
        try:
            self.account = account_for(self.executor.pool, self.executor.queue, self.job_id,
                                       self.spec.cluster)
        except Unbound as exc:  # (an admin unbound them since they asked)
            self._rejected(str(exc))
            return
        if self.account.user:
            self.executor.update(self.job_id, run_as=self.account.user)
        if not self._submit():
            return
        self._submitted_at = time.time()
        self.executor.tell(self.job_id, self.submitted_text(), submit_state="submitted",
                           slurm_job_id=self.slurm_id, submitted_at=self._submitted_at)
        self._track()
        self._collect()

    def submitted_text(self) -> str:
        return (f"`{self.spec.type}` (job {self.job_id}) submitted as Slurm job {self.slurm_id} "
                f"on cluster {self.spec.cluster}.")

    def workdir(self) -> str:
        """The job's folder on the cluster (relative to the login directory, or absolute)."""
        return self.slurm.workdir.removeprefix("~/")

    def resume(self, record) -> None:
        """Track a Slurm job that an earlier dispatcher submitted, then report it."""
        self.slurm_id = record.slurm_job_id
        self.output_path = record.output_path or ""
        self.account = Account(self.connection, record.run_as)
        self._track()
        self._collect()

    def _script(self, workdir: str) -> str:
        return posixpath.join(workdir, f"chatops-{self.job_id}.sh")

    def _submit(self) -> bool:
        name = self.spec.cluster
        workdir = self.workdir()
        script = self._script(workdir)
        options = {
            "job-name": f"chatops-{self.job_id}", "chdir": workdir,
            "output": f"chatops-{self.job_id}.out", "partition": self.slurm.partition,
            "time": self.slurm.time, "mem": self.slurm.mem, "cpus-per-task": self.slurm.cpus,
            "gpus": self.slurm.gpus,
        }
        try:
            self._stage(workdir, script)
        except ClusterUnreachable as exc:
            return self._rejected(f"cluster {name} unreachable: {exc}")
        except (OSError, paramiko.SSHException) as exc:
            return self._rejected(f"could not upload its files to cluster {name}: "
                                  f"{describe_error(exc)}")
        try:
            self.slurm_id = self.client.sbatch(script, options=options).job_id
        except ConnectionError as exc:
            return self._rejected(str(exc))
        except SlurmError as exc:
            if exc.message.startswith("unexpected sbatch output"):
                return self._rejected(f"sbatch answered without a job id ({exc.message}); "
                                      "it was not retried")
            if exc.message.startswith("timed out"):
                return self._rejected(f"the answer to sbatch was lost ({exc.message}); it may "
                                      f"have been submitted as `chatops-{self.job_id}` and is "
                                      "not retried", state="unknown")
            return self._rejected(f"sbatch refused it: {exc.message}")
        return True

    def _rejected(self, why: str, state: str = "rejected") -> bool:
        self.error = why
        self.executor.update(self.job_id, submit_state=state, error=why[:2000])
        return False

    def _stage(self, workdir: str, script: str) -> None:
        """Write the files the job stages and its script, readable by the account only.

        Through ``cat`` on an exec channel rather than SFTP: an sftp-server started by a shell
        whose start-up prints (a greeting in a site .bashrc) breaks the SFTP protocol."""
        body = "#!/bin/bash\n" + f"# chatops job {self.job_id} ({self.spec.type})\n"
        body += (self.slurm.setup.rstrip("\n") + "\n" if self.slurm.setup else "")
        body += self.command + "\n"
        source = self.executor.settings.workspace_dir / self.spec.namespace
        for item in self.slurm.stage:
            with open(source / item, "rb") as data:
                self.account.put(posixpath.join(workdir, item), data)
        self.account.put(script, body.encode(), executable=True)

    def _track(self) -> None:
        delay = FIRST_POLL
        while not self.done:  # done early: the dispatcher shut down and let it go
            if self._stop is not None and not self._scancelled:
                self._scancel()
            if self._give_up_at is not None and time.monotonic() > self._give_up_at:
                self.error = (f"Slurm did not confirm the end of job {self.slurm_id} after it "
                              "was cancelled; check `squeue` on the cluster")
                return
            try:
                queued = self.executor.rounds(self.connection, self.account.name).squeue(
                    self.client, self.slurm_id)
                if not queued or queued[0].state in TERMINAL:
                    return
                self._seen(queued[0].state)
            except (SlurmError, OSError, ClusterUnreachable):
                pass  # the cluster is away for now: keep waiting, with backoff
            # jittered, so that jobs submitted together do not query slurmctld in step
            woken = self._wake.wait(delay * random.uniform(0.9, 1.1))
            self._wake.clear()
            delay = FIRST_POLL if woken else min(delay * 1.5, self.slurm.poll_seconds)

    def status(self) -> str:
        """``Slurm job 42 on cluster c: RUNNING for 0:01:10 (queued 0:00:03)``."""
        if self.slurm_id is None:
            return "not submitted to Slurm yet"
        where = f"Slurm job {self.slurm_id} on cluster {self.spec.cluster}"
        now, state = time.time(), self._slurm_state or "submitted"
        if self._running_at is not None:
            waited = (f" (queued {duration(self._running_at - self._submitted_at)})"
                      if self._submitted_at else "")
            return f"{where}: {state} for {duration(now - self._running_at)}{waited}"
        if self._submitted_at is not None:
            return f"{where}: {state}, queued for {duration(now - self._submitted_at)}"
        return f"{where}: {state}"

    def _seen(self, state: str) -> None:
        """Record Slurm's state when it changes; while the job runs, copy the end of its output
        file into its stdout log at every look, so that `logs` shows what it has written."""
        if state != self._slurm_state:
            self._slurm_state = state
            if state == "RUNNING" and self._running_at is None:
                self._running_at = time.time()
            self.executor.update(self.job_id, slurm_state=state)
        if state == "RUNNING":
            self._copy_output()

    def _copy_output(self) -> str:
        """The end of the output file (LOG_LINES lines), written to the stdout log; "" when it
        cannot be read."""
        result = self.account.tail(self.output_path, LOG_BYTES)
        if result.returncode != 0:
            return ""
        lines = result.stdout.splitlines(keepends=True)
        if len(result.stdout.encode()) >= LOG_BYTES and lines:
            lines = lines[1:]  # the first line is cut
        text = "".join(lines[-LOG_LINES:])
        path = self.logs.path("stdout")
        partial = path.with_name(f".{path.name}.copy")
        partial.write_text(text)
        partial.replace(path)  # `logs` never reads half a copy
        return text

    def _scancel(self) -> None:
        try:
            self.client.scancel(self.slurm_id)
            self._scancelled = True
        except SlurmError as exc:
            if "Invalid job id" in exc.message or "already completing" in exc.message:
                self._scancelled = True  # it ended meanwhile
        except ConnectionError:
            pass  # tried again at the next poll

    def _collect(self) -> None:
        if self.error or self.done:
            return
        deadline = time.monotonic() + ACCOUNTING_WAIT
        # slurmdbd may hold the end before the job's request and limit, and before its steps'
        # ends (where the signal of a time limit or a scancel is): wait a little for them
        complete_by = None
        while True:
            try:
                jobs = self.client.sacct_jobs([self.slurm_id])
            except (SlurmError, ConnectionError):
                jobs = []
            if jobs and jobs[0].job.state in TERMINAL:
                self.acct = jobs[0]
                head = jobs[0].job
                complete_by = complete_by or time.monotonic() + ACCOUNTING_COMPLETE_WAIT
                if (head.req_mem_bytes is not None and head.time_limit is not None
                        and all(step.state in TERMINAL for step in jobs[0].steps)):
                    break
                if time.monotonic() > complete_by:
                    break
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        with contextlib.suppress(ConnectionError, TimeoutError, ClusterUnreachable, OSError):
            copied = self._copy_output()
            lines = copied.splitlines(keepends=True)[-max(1, self.slurm.output_lines):]
            self.output_tail = "".join(lines)
        job = self.acct.job if self.acct else None
        state = job.state if job else "UNKNOWN"
        self.executor.update(self.job_id, submit_state="ended", slurm_state=state,
                             exit_code=job.exit_code if job else None, ended_at=time.time())
        self.logs.path("slurm.json").write_text(json.dumps({
            "cluster": self.spec.cluster, "slurm_job_id": self.slurm_id, "state": state,
            "exit_code": job.exit_code if job else None, "output": self.output_path}))
        self.exit_code = 0 if state == "COMPLETED" and job and job.exit_code == 0 else (
            job.exit_code if job and job.exit_code else 1)

    # -- the dispatcher's side ---------------------------------------------------------------

    def signal(self, sig: int) -> str | None:
        where = f"Slurm job {self.slurm_id} on cluster {self.spec.cluster}"
        if self.done:
            return f"{where} has ended already"
        if self.executor.stopping.is_set() and self.slurm_id is not None:
            # A dispatcher restart must not cancel (or resubmit) work Slurm is doing: the
            # job stays running in the queue and the next dispatcher tracks it.
            self.handed_over = True
            self.finish(-sig)
            return f"{where} keeps running: handed over to the next dispatcher"
        self._stop = sig
        if sig == signals.SIGKILL and self._give_up_at is None:
            self._give_up_at = time.monotonic() + GIVE_UP_AFTER_KILL
        self._wake.set()
        if self.slurm_id is None:
            return "not a Slurm job yet: not submitted, or cancelled once sbatch answers"
        return f"scancel of {where}"

    def wake(self) -> None:
        """Poll now (a MailProg event says the job changed), not after the backoff pause."""
        self._wake.set()

    def adjust_report(self, outcome: str, report: Report, stop_reason: str | None,
                      exit_code: int) -> tuple[str, Report]:
        return batch_report(self, stop_reason)  # Slurm's account of the end, not the thread's


class BatchExecutor:
    """Start batch runs; keeps the submission records and queues "submitted" notices."""

    def __init__(self, settings: Settings, queue: Queue, pool: SSHPool,
                 stopping: threading.Event | None = None):
        self.settings = settings
        self.queue = queue
        self.pool = pool
        self.stopping = stopping or threading.Event()  # set while the dispatcher shuts down
        self._rounds: dict[tuple[int, str], tuple[ClusterConnection, SqueueRounds]] = {}
        self._rounds_lock = threading.Lock()

    def start(self, job_id: int, spec: JobSpec, args: Mapping[str, str], logs: JobLogs,
              has_fabfile: bool = False) -> BatchRun:
        run = BatchRun(self, job_id, spec, command_line(spec, args), logs)
        run.start_thread(run.main)
        return run

    def resume(self, job_id: int, spec: JobSpec, logs: JobLogs, record) -> BatchRun:
        """Track again a job submitted by an earlier dispatcher (``record``: its submission)."""
        run = BatchRun(self, job_id, spec, "", logs)
        run.start_thread(lambda: run.resume(record))
        return run

    def rounds(self, connection: ClusterConnection, account: str) -> SqueueRounds:
        """The runs on ``connection`` that query Slurm as the same ``account`` poll their jobs
        together (dispatcher/squeue_rounds.py): a site with PrivateData shows each person only
        their own jobs, so one person's squeue must never answer for another's."""
        with self._rounds_lock:
            held = self._rounds.get((id(connection), account))
            if held is None or held[0] is not connection:
                held = self._rounds[(id(connection), account)] = (connection, SqueueRounds())
            return held[1]

    def record(self, job_id: int, cluster: str, **paths: str):
        """Write the submission record first (with the script's and output's ``paths``);
        return the existing one if there is one."""
        try:
            with self.queue.engine.begin() as conn:
                conn.execute(insert(slurm_submissions).values(
                    job_id=job_id, cluster=cluster, submit_state="submitting",
                    created_at=time.time(), **paths))
            return None
        except IntegrityError:
            return self.submission(job_id)

    def submission(self, job_id: int):
        return self.queue.slurm_submission(job_id)

    def update(self, job_id: int, **values: object) -> None:
        with self.queue.engine.begin() as conn:
            conn.execute(update(slurm_submissions)
                         .where(slurm_submissions.c.job_id == job_id).values(**values))

    def tell(self, job_id: int, text: str, **submission: object) -> None:
        """A notice to everyone waiting for the job, in their threads; with ``submission``,
        in the transaction that records those values (one write instead of two)."""
        with self.queue.atomic() as conn:
            if submission:
                conn.execute(update(slurm_submissions)
                             .where(slurm_submissions.c.job_id == job_id).values(**submission))
            for sub in self.queue.subscribers_of(job_id):
                self.queue.add_delivery(sub.platform, notice(text), channel=sub.channel,
                                        thread=sub.thread, message=sub.message,
                                        is_direct=bool(sub.is_direct), job_id=job_id)
        self.queue.release_connection()  # a tracker thread holds none while Slurm works
        wakeup.notify(self.settings.run_dir, "outbox")
