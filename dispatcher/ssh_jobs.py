"""Run a job on its cluster's login node, on a new channel of the pooled connection.

A job's command runs as ``setsid bash -c '<print pgid>; exec bash -lc "<mark>; eval \"$1\""'
<command>``: in a new process group whose id is printed first, so a timeout or cancel kills the
whole remote group (``kill -TERM -- -<pgid>`` on a second channel). The job's ``env`` travels
on the channel's stdin, which then stays open as its lifeline: if the dispatcher dies, the job
dies with it. On a cluster that runs jobs as the person who asks, the same happens as them,
through the site's wrapper (its ``job`` and ``signal`` verbs; dispatcher/cluster_account.py).
"""

from __future__ import annotations

import logging
import re
import signal as signals
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import paramiko

from chatops.job_config import JobSpec
from chatops.joblogs import JobLogs
from chatops.queue import Queue
from chatops.report import Report, failure_report
from chatops.settings import Settings
from dispatcher.cluster_account import Account, Unbound, account_for
from dispatcher.local import command_line
from dispatcher.ssh import AfterMark, ClusterUnreachable, SSHPool, describe_error, env_records
from dispatcher.threadrun import ThreadRun

log = logging.getLogger("chatops.ssh")

DEFAULT_LOG_LIMIT = 64 * 1024 * 1024  # bytes kept of each of a remote job's streams
_PGID_LINE = re.compile(rb"chatops-pgid:(\d+)\r?\n")  # (cluster_account.JOB_WRAPPER)


class CappedWriter:
    """Write to a log file, made on the first byte, up to ``limit`` bytes; then note the cut and
    drop the rest."""

    def __init__(self, path: Path, limit: int):
        self.path, self.limit, self.written, self.cut = path, limit, 0, False
        self.file: BinaryIO | None = None

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.file is None:
            self.file = open(self.path, "wb")
        room = self.limit - self.written
        if room > 0:
            self.file.write(data[:room])
            self.written += min(room, len(data))
            self.file.flush()
        if len(data) > room and not self.cut:
            self.cut = True
            self.file.write(f"\n[chatops: output cut at {self.limit} bytes]\n".encode())
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class SSHRun(ThreadRun):
    """A job running on a cluster; ends when its remote command exits (or cannot start)."""

    def __init__(self, job_id: int, account: Account, command: str, logs: JobLogs,
                 log_limit: int, env: Mapping[str, str] | None = None):
        super().__init__(job_id, f"on cluster {account.connection.spec.name}")
        self.account = account  # whose account it runs under there
        self.connection = account.connection
        self.command = command
        self.env = dict(env or {})  # the job's `env`, sent on stdin (see JOB_WRAPPER)
        self.logs = logs
        self.log_limit = log_limit
        self.pgid: int | None = None
        self.lost_connection = False
        self._pending: int | None = None  # a signal asked for before the pgid was known
        self._lock = threading.Lock()

    def remote_command(self) -> str:
        return self.account.job_line(self.command)

    def main(self) -> None:
        name = self.connection.spec.name
        out = CappedWriter(self.logs.path("stdout"), self.log_limit)
        err = CappedWriter(self.logs.path("stderr"), self.log_limit)
        try:
            with self.connection.session() as channel:
                if self._pending is not None:  # cancelled while connecting: never start
                    self.exit_code = -self._pending
                    return
                channel.exec_command(self.remote_command())
                # stdin stays open until the job ends: it is the job's lifeline (JOB_WRAPPER)
                channel.sendall(env_records(self.env))
                self._pump(channel, out, err)
                channel.status_event.wait()
                transport = channel.get_transport()
                self.lost_connection = channel.exit_status == -1 and not (
                    transport and transport.is_active())
                self.exit_code = channel.exit_status
        except ClusterUnreachable as exc:
            self.error = f"cluster {name} unreachable: {exc}"
            self.exit_code = 255
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.error = f"lost the connection to cluster {name}: {describe_error(exc)}"
            self.exit_code = 255
        finally:
            out.close()
            err.close()

    def _pump(self, channel: paramiko.Channel, out: CappedWriter, err: CappedWriter) -> None:
        def read_stderr() -> None:
            stream = AfterMark()
            while data := channel.recv_stderr(65536):
                err.write(stream.feed(data))
            err.write(stream.end())

        reader = threading.Thread(target=read_stderr, daemon=True, name=f"job-{self.job_id}-err")
        reader.start()
        head, stream = b"", AfterMark()
        while data := channel.recv(65536):
            if self.pgid is None:
                head += data
                match = _PGID_LINE.search(head)
                if match is None:
                    head = head[-200:]  # login noise before the mark: not the job's output
                    continue
                self._started(int(match.group(1)))
                data = head[match.end():]
            out.write(stream.feed(data))
        out.write(stream.end())
        reader.join()

    def _started(self, pgid: int) -> None:
        with self._lock:
            self.pgid = pgid
            pending = self._pending
        self.logs.path("remote").write_text(f"{self.connection.spec.name} {pgid}\n")
        if pending is not None:
            self._kill(pgid, pending)

    def signal(self, sig: int) -> None:
        with self._lock:
            self._pending = sig
            pgid = self.pgid
        if pgid is not None:  # also after the end: what the job left in its group
            threading.Thread(target=self._kill, args=(pgid, sig), daemon=True).start()

    def _kill(self, pgid: int, sig: int) -> None:
        name = signals.Signals(sig).name.removeprefix("SIG")
        try:
            self.connection.exec(self.account.signal_line(pgid, name))
        except Exception as exc:  # the group may be gone already, or the cluster with it
            log.warning("job %s: could not send SIG%s to remote group %s: %s", self.job_id,
                        name, pgid, describe_error(exc))

    def adjust_report(self, outcome: str, report: Report, stop_reason: str | None,
                      exit_code: int) -> tuple[str, Report]:
        where = self.connection.spec.name
        if self.error:
            what, logs = f"failed: {self.error}", None
        elif self.lost_connection and stop_reason is None:
            what = (f"failed: the connection to cluster {where} was lost while it ran, "
                    "which stops it there; its outcome is unknown")
            logs = self.logs
        else:
            return outcome, report
        new = failure_report(self.job_id, report.job_type, report.namespace, "failed", what,
                             logs)
        new.details["summary"] = what
        return "failed", new


class SSHExecutor:
    """Start jobs on their cluster through the shared pool."""

    def __init__(self, settings: Settings, pool: SSHPool, queue: Queue):
        self.settings = settings
        self.pool = pool
        self.queue = queue
        self.log_limit = int(settings.environ.get("CHATOPS_REMOTE_LOG_LIMIT")
                             or DEFAULT_LOG_LIMIT)

    def start(self, job_id: int, spec: JobSpec, args: Mapping[str, str], logs: JobLogs,
              has_fabfile: bool = False) -> SSHRun:
        command = command_line(spec, args)  # quoted exactly as for a local job
        env = {name: self.settings.environ[name] for name in spec.env
               if name in self.settings.environ}
        try:
            account = account_for(self.pool, self.queue, job_id, spec.cluster)
        except Unbound as exc:  # (an admin unbound them since they asked)
            run = SSHRun(job_id, Account(self.pool.connection(spec.cluster)), command, logs,
                         self.log_limit, env)
            run.error = str(exc)
            run.finish(255)
            return run
        run = SSHRun(job_id, account, command, logs, self.log_limit, env)
        run.start_thread(run.main)
        return run
