"""Whose account a job's commands run under on its cluster, and the few things done there.

``Account(connection, None)``: the connection's own login (the cluster's ``user``), with plain
commands. ``Account(connection, "jdoe")`` (the cluster's ``submit_as = "requester"``): every
command is ``sudo -n -u jdoe -- <wrapper> VERB ARG...``, the site's fixed wrapper
(scripts/chatops-submit), whose verbs are all the service may do as a person; files it stages
are the person's (folders 0700, files 0600), so people cannot read one another's. Either way
every argument is quoted word by word.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import BinaryIO

from chatops import submit_as
from chatops.queue import Queue
from chatops.slurm.client import CommandResult
from dispatcher.ssh import (
    PRINT_START,
    READ_ENV,
    ClusterConnection,
    PrepareFailed,
    SSHPool,
    env_records,
)

# How a remote job runs (dispatcher/ssh_jobs.py; the wrapper's `job` verb does the same as the
# person). The outer bash first reads the job's `env` from stdin (READ_ENV). The job runs in its
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
LONG = 300.0  # seconds allowed for moving files


class Account:
    """One account on one cluster: the connection's own (``user`` None) or a person's."""

    def __init__(self, connection: ClusterConnection, user: str | None = None):
        self.connection = connection
        self.user = user

    @property
    def name(self) -> str:
        return self.user or self.connection.spec.user

    def _as(self, verb: str, *args: str) -> str:
        return shlex.join(["sudo", "-n", "-u", self.user, "--",
                           self.connection.spec.submit_wrapper, verb, *args])

    def _checked(self, result: CommandResult) -> CommandResult:
        """A sudo that refuses says so plainly: the site's set-up, not the job, is at fault."""
        if self.user and result.returncode != 0 and result.stderr.startswith("sudo:"):
            raise ConnectionError(
                f"cluster {self.connection.spec.name} did not let {self.connection.spec.user} "
                f"act as {self.user} ({result.stderr.strip()}): the sudoers rule and wrapper "
                "of DEPLOY.md, *Jobs as the person*, are missing there, or the account is not "
                "in their group")
        return result

    def _timeout(self, timeout: float | None) -> float:
        return timeout or self.connection.spec.command_timeout

    def slurm(self, argv: list[str], timeout: float, env: Mapping[str, str] | None = None
              ) -> CommandResult:
        """The Slurm client's runner (sbatch, squeue, sacct, scancel); ``env``: sbatch's."""
        if self.user is None:
            return self.connection.run(argv, timeout, env)
        stdin = env_records(env) if env else None  # the wrapper reads them (sudo drops env)
        return self._checked(self.connection.run_line(self._as(*argv), timeout, stdin))

    def run(self, argv: list[str], verb: str, args: list[str],
            timeout: float | None = None) -> CommandResult:
        """``argv`` as the login itself, or the wrapper's ``verb args`` as the person."""
        line = shlex.join(argv) if self.user is None else self._as(verb, *args)
        return self._checked(self.connection.run_line(line, self._timeout(timeout)))

    def put(self, target: str, data: bytes | BinaryIO, executable: bool = False) -> None:
        """Write one file (0600, or 0700 when ``executable``), making its folders (0700)."""
        folder = shlex.quote(target.rpartition("/")[0] or ".")
        line = (f"umask 077 && mkdir -p {folder} && cat > {shlex.quote(target)} && chmod "
                f"{700 if executable else 600} {shlex.quote(target)}" if self.user is None
                else self._as("put", target, *(["exec"] if executable else [])))
        self._write(line, target, data)

    def _unpack_line(self, folder: str) -> str:
        quoted = shlex.quote(folder)
        return (f"umask 077 && mkdir -p {quoted} && tar -x -p -f - -C {quoted}"
                if self.user is None else self._as("unpack", folder))

    def unpack(self, folder: str, archive: bytes) -> None:
        """A tar stream unpacked into ``folder`` (made 0700), its members' modes kept."""
        self._write(self._unpack_line(folder), f"into {folder}", archive)

    def unpack_then_slurm(self, folder: str, archive: bytes, argv: list[str], timeout: float
                          ) -> CommandResult:
        """``unpack``, then (only if that worked) the Slurm command ``argv``, in one round trip
        (a calculation's staging and its sbatch); ``PrepareFailed`` when the unpacking failed."""
        then = shlex.join(argv) if self.user is None else self._as(*argv)
        try:
            return self._checked(self.connection.run_after(
                self._unpack_line(folder), archive, then, max(timeout, LONG)))
        except PrepareFailed as exc:
            self._checked(CommandResult(1, "", str(exc)))  # a sudo that refuses says so
            raise

    def _write(self, line: str, what: str, data: bytes | BinaryIO) -> None:
        result = self.connection.exec(line, max(self.connection.spec.command_timeout, LONG),
                                      stdin=data)
        if result.returncode != 0:
            self._checked(result)
            raise OSError(f"cannot write {what}: {result.stderr.strip() or result.returncode}")

    def tail(self, path: str, size: int) -> CommandResult:
        return self.run(["tail", "-c", str(size), path], "tail", [str(size), path])

    def listing(self, folder: str, timeout: float) -> CommandResult:
        """``SIZE NAME`` of each file directly in ``folder``."""
        return self.run(["find", folder, "-maxdepth", "1", "-type", "f", "-printf", "%s %f\\n"],
                        "list", [folder], timeout)

    def remove(self, folder: str) -> CommandResult:
        return self.run(["rm", "-rf", "--", folder], "remove", [folder])

    def read(self, path: str, timeout: float) -> tuple[int, bytes, bytes]:
        line = (f"cat -- {shlex.quote(path)}" if self.user is None else self._as("read", path))
        return self.connection.exec_bytes(line, timeout)

    def pack(self, folder: str, names: list[str], timeout: float) -> tuple[int, bytes, bytes]:
        """A .tar.gz of ``names`` in ``folder``, as bytes."""
        line = (f"tar -czf - -C {shlex.quote(folder)} -- {shlex.join(names)}"
                if self.user is None else self._as("pack", folder, *names))
        return self.connection.exec_bytes(line, timeout)

    def signal_line(self, pgid: int, name: str) -> str:
        """The command sending SIG``name`` to a remote job's process group."""
        if self.user is None:
            return f"kill -{name} -- -{pgid}"
        return self._as("signal", name, str(pgid))

    def job_line(self, command: str) -> str:
        """The remote command that runs a job's command line (see JOB_WRAPPER)."""
        if self.user is None:
            return f"{JOB_WRAPPER} {shlex.quote(command)}"
        return "exec " + self._as("job", command)


class Unbound(Exception):
    """The cluster runs jobs as the person who asks, and this person has no bound account."""


def account_for(pool: SSHPool, queue: Queue, job_id: int, cluster: str) -> Account:
    """The account job ``job_id`` runs as on ``cluster``: its requester's bound one when the
    cluster's ``submit_as`` is "requester" (Unbound when there is none), else the cluster's."""
    connection = pool.connection(cluster)
    if connection.spec.submit_as != "requester":
        return Account(connection)
    job = queue.get(job_id)
    platform, user_id = (job.platform or "", job.requested_by or "") if job else ("", "")
    user = submit_as.cluster_account(queue.engine, platform, user_id)
    queue.release_connection()  # a job's thread holds none while it works
    if user is None:
        raise Unbound(submit_as.unbound(cluster, f"{platform}:{user_id}"))
    return Account(connection, user)
