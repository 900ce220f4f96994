"""Run a job on its cluster's login node, on a new channel of the pooled connection.

A job's command runs as ``setsid bash -c '<print pgid>; exec bash -lc "<mark>; eval \"$1\""'
<command>``: in a new process group whose id is printed first, so a timeout or cancel kills the
whole remote group (``kill -TERM -- -<pgid>`` on a second channel). The job's ``env`` travels
on the channel's stdin, which then stays open as its lifeline: if the dispatcher dies, the job
dies with it.
"""

from __future__ import annotations

import logging
import re
import shlex
import signal as signals
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import paramiko

from chatops.job_config import JobSpec
from chatops.report import Report, failure_report
from chatops.settings import Settings
from dispatcher.local import command_line
from dispatcher.ssh import (
    PRINT_START,
    READ_ENV,
    AfterMark,
    ClusterConnection,
    ClusterUnreachable,
    SSHPool,
    describe_error,
    env_records,
)
from dispatcher.threadrun import ThreadRun

log = logging.getLogger("chatops.ssh")

DEFAULT_LOG_LIMIT = 64 * 1024 * 1024  # bytes kept of each of a remote job's streams
_PGID_LINE = re.compile(rb"chatops-pgid:(\d+)\r?\n")
# The outer bash first reads the job's `env` from stdin (READ_ENV). The job runs in its
# own session (setsid from a background child: no fork, so $$ is the new process group's id).
# A watcher holds stdin: the dispatcher keeps it open while the job runs, so when the
# connection dies with the dispatcher, stdin ends and the whole job group is killed. The outer
# bash waits for the job and passes its exit status on.
# The login shell prints START_MARK (to both streams) once its profile has run, then runs the
# command: the profile's greetings and module messages stay out of the job's output.
_LOGIN = PRINT_START + 'eval "$1"'
_INNER = f'printf "chatops-pgid:%s\\n" "$$"; exec bash -lc {shlex.quote(_LOGIN)} chatops-job "$1"'
_OUTER = (READ_ENV +
          f'setsid bash -c {shlex.quote(_INNER)} chatops-job "$1" </dev/null & job=$!; '
          '{ while read -r _; do :; done; kill -KILL -- -$job 2>/dev/null; } <&0 & watch=$!; '
          'wait $job; rc=$?; kill $watch 2>/dev/null; exit $rc')
JOB_WRAPPER = f"exec bash -c {shlex.quote(_OUTER)} chatops-wrap"


class CappedWriter:
    """Write to a log file up to ``limit`` bytes, then note the cut and drop the rest."""

    def __init__(self, file: BinaryIO, limit: int):
        self.file, self.limit, self.written, self.cut = file, limit, 0, False

    def write(self, data: bytes) -> None:
        room = self.limit - self.written
        if room > 0:
            self.file.write(data[:room])
            self.written += min(room, len(data))
            self.file.flush()
        if len(data) > room and not self.cut:
            self.cut = True
            self.file.write(f"\n[chatops: output cut at {self.limit} bytes]\n".encode())
            self.file.flush()


class SSHRun(ThreadRun):
    """A job running on a cluster; ends when its remote command exits (or cannot start)."""

    def __init__(self, job_id: int, connection: ClusterConnection, command: str, log_dir: Path,
                 log_limit: int, env: Mapping[str, str] | None = None):
        super().__init__(job_id, f"on cluster {connection.spec.name}")
        self.connection = connection
        self.command = command
        self.env = dict(env or {})  # the job's `env`, sent on stdin (see JOB_WRAPPER)
        self.log_dir = log_dir
        self.log_limit = log_limit
        self.pgid: int | None = None
        self.lost_connection = False
        self._pending: int | None = None  # a signal asked for before the pgid was known
        self._lock = threading.Lock()

    def remote_command(self) -> str:
        return f"{JOB_WRAPPER} {shlex.quote(self.command)}"

    def main(self) -> None:
        name = self.connection.spec.name
        with open(self.log_dir / "stdout", "wb") as out, open(self.log_dir / "stderr", "wb") as err:
            try:
                with self.connection.session() as channel:
                    if self._pending is not None:  # cancelled while connecting: never start
                        self.exit_code = -self._pending
                        return
                    channel.exec_command(self.remote_command())
                    # stdin stays open until the job ends: it is the job's lifeline (JOB_WRAPPER)
                    channel.sendall(env_records(self.env))
                    self._pump(channel, CappedWriter(out, self.log_limit),
                               CappedWriter(err, self.log_limit))
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
        (self.log_dir / "remote").write_text(f"{self.connection.spec.name} {pgid}\n")
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
            self.connection.exec(f"kill -{name} -- -{pgid}")
        except Exception as exc:  # the group may be gone already, or the cluster with it
            log.warning("job %s: could not send SIG%s to remote group %s: %s", self.job_id,
                        name, pgid, describe_error(exc))

    def adjust_report(self, outcome: str, report: Report, stop_reason: str | None,
                      exit_code: int) -> tuple[str, Report]:
        where = self.connection.spec.name
        if self.error:
            what, log_dir = f"failed: {self.error}", None
        elif self.lost_connection and stop_reason is None:
            what = (f"failed: the connection to cluster {where} was lost while it ran, "
                    "which stops it there; its outcome is unknown")
            log_dir = self.log_dir
        else:
            return outcome, report
        new = failure_report(self.job_id, report.job_type, report.namespace, "failed", what,
                             log_dir)
        new.details["summary"] = what
        return "failed", new


class SSHExecutor:
    """Start jobs on their cluster through the shared pool."""

    def __init__(self, settings: Settings, pool: SSHPool):
        self.settings = settings
        self.pool = pool
        self.log_limit = int(settings.environ.get("CHATOPS_REMOTE_LOG_LIMIT")
                             or DEFAULT_LOG_LIMIT)

    def start(self, job_id: int, spec: JobSpec, args: Mapping[str, str], log_dir: Path,
              has_fabfile: bool = False) -> SSHRun:
        command = command_line(spec, args)  # quoted exactly as for a local job
        env = {name: self.settings.environ[name] for name in spec.env
               if name in self.settings.environ}
        run = SSHRun(job_id, self.pool.connection(spec.cluster), command, log_dir,
                     self.log_limit, env)
        run.start_thread(run.main)
        return run
