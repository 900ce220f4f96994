"""Run a job on this machine, in its workspace, in its own process group.

The command line is the job's ``run_args_template`` with every argument shell-quoted; it runs
under ``bash -c``, or directly when bash would only have split it into words
(``dispatcher.direct``). The environment is an allow-list — a job never sees the service's
settings — and, with ``CHATOPS_JOB_USER``, the job runs as that account (``chatops.privileges``).

Output comes back through two pipes that the dispatcher's loop reads; it is written to
``<id>.stdout`` / ``<id>.stderr`` in the job type's log folder as it arrives, and a stream that
stays empty creates no file. The job's pid and kernel start time go into its row, so a later
dispatcher can stop what a dead one left running.
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from chatops import privileges
from chatops.job_config import JobSpec
from chatops.joblogs import JobLogs
from chatops.privileges import Account
from chatops.report import Report
from chatops.settings import REPO_ROOT, Settings
from dispatcher import direct, spawn

log = logging.getLogger("chatops.dispatcher")

BASE_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
CHUNK = 65536
Started = tuple[int, Callable[[], int]]  # a started process: pid, how to wait for its exit code


class PrepareError(Exception):
    """The job cannot be started (bad template, missing directory, ...)."""


def command_line(spec: JobSpec, args: Mapping[str, str]) -> str:
    """The shell command for a job, with every argument quoted."""
    quoted = {name: shlex.quote(str(value)) for name, value in args.items()}
    try:
        return spec.run_args_template.format(**quoted)
    except (KeyError, IndexError, ValueError) as exc:
        raise PrepareError(f"run_args_template {spec.run_args_template!r} cannot be filled "
                           f"with {sorted(args)}: {type(exc).__name__}: {exc}") from exc


def job_environment(settings: Settings, spec: JobSpec,
                    account: Account | None = None) -> dict[str, str]:
    """The allow-listed environment: who the job runs as, the locale, PATH, and the values of
    the names its ``env`` lists (read once at start, see ``Settings.environ``)."""
    source = settings.environ
    env = {name: source[name] for name in BASE_ENV if name in source}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    if account is not None:
        env.update(HOME=account.home, USER=account.name, LOGNAME=account.name)
    else:
        env.update({name: source[name] for name in ("HOME", "USER", "LOGNAME") if name in source})
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["CHATOPS_WRITEABLE_DIR"] = str(settings.writeable_dir)
    for name in spec.env:
        if name in source:
            env[name] = source[name]
    return env


def working_dir(settings: Settings, namespace: str, has_fabfile: bool,
                account: Account | None = None) -> Path:
    workspace = settings.workspace_dir / namespace
    if workspace.is_dir() and not has_fabfile:
        return workspace
    writeable = settings.writeable_dir / namespace
    if not writeable.is_dir():  # made by whoever jobs run as: theirs to write
        if account is not None:
            account.make_dir(writeable)
        else:
            writeable.mkdir(parents=True, exist_ok=True)
    return writeable


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (to tell a process from a later one with its pid)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class Launch:
    """A job ready to start: prepared on the loop thread, started by ``LocalExecutor.spawn``."""

    job_id: int
    command: str
    cwd: Path
    env: dict[str, str]
    logs: JobLogs
    direct: direct.Direct | None  # set when bash is not needed


class Output:
    """One of a job's streams: a pipe the loop reads, written to a log file as it arrives.

    The file is made on the first byte, so a job that prints nothing creates nothing.
    """

    def __init__(self, fd: int, path: Path, owner: tuple[int, int] | None):
        self.fd = fd
        self.path = path
        self.owner = owner  # who the log file must belong to, when we run as root
        self.file: int | None = None
        self.lost = False

    def fileno(self) -> int:
        return self.fd

    def pump(self, drain: bool = False) -> bool:
        """Copy what the pipe holds to the log file: one read, or (``drain``) until the pipe is
        empty. False once every writer has closed it (EOF); then unregister and ``close()``."""
        while True:
            try:
                data = os.read(self.fd, CHUNK)
            except BlockingIOError:
                return True
            except OSError as exc:  # not expected from a pipe; never lose the loop over it
                log.warning("reading %s: %s", self.path, exc)
                return False
            if not data:
                return False
            self._write(data)
            if not drain:
                return True

    def _write(self, data: bytes) -> None:
        try:
            if self.file is None:
                self.file = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                                    | os.O_APPEND | os.O_CLOEXEC, 0o640)
                if self.owner is not None:
                    os.fchown(self.file, *self.owner)
            os.write(self.file, data)
        except OSError as exc:  # a full disk: the job goes on, the loss is logged once
            if not self.lost:
                log.warning("job output lost: cannot write %s: %s", self.path, exc)
            self.lost = True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.file is not None:
            os.close(self.file)
            self.file = None

    @property
    def closed(self) -> bool:
        return self.fd < 0


class LocalRun:
    """A started job (a ``dispatcher.executors.Run``); ``fileno()`` is its pidfd, readable when
    it ends. It also has ``outputs``, the pipes the loop reads, and its ``pid`` and
    ``pid_start`` for the job row."""

    idle_wait = False
    handed_over = False

    def __init__(self, job_id: int, started: Started, outputs: list[Output], direct_exec: bool):
        self.job_id = job_id
        self.pid, self._exit_code = started
        self.outputs = outputs
        self.pid_start = process_start_time(self.pid)
        self.direct = direct_exec
        self._pidfd = os.pidfd_open(self.pid)

    def fileno(self) -> int:
        return self._pidfd

    @property
    def label(self) -> str:
        return f"pid {self.pid}" + ("" if self.direct else ", bash")

    def wait(self) -> int:
        """The exit code (negative: killed by that signal); call once fileno() is readable."""
        return self._exit_code()

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        os.close(self._pidfd)

    def status(self) -> str:
        return ""

    def wake(self) -> None:
        """Nothing to poll: the pidfd says when the job ends."""

    def adjust_report(self, outcome: str, report: Report, stop_reason: str | None,
                      exit_code: int) -> tuple[str, Report]:
        return outcome, report


class LocalExecutor:
    def __init__(self, settings: Settings, account: Account | None = None):
        self.settings = settings
        self.account = account
        self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._log_owner: tuple[int, int] | None = None
        self._setpriv = (shutil.which("setpriv", path="/usr/bin:/bin")
                         if account is not None and os.geteuid() == 0 else None)

    def make_log_folder(self, folder: Path) -> None:
        """Make a job type's log folder (the dispatcher does it once per type). As root, what we
        make in the logs tree belongs to the tree's owner, the service account that serves it;
        0750 keeps the job account out."""
        logs = self.settings.logs_dir
        self._log_owner = privileges.owner_for(logs)
        path = logs.parent
        for name in folder.relative_to(path).parts:  # logs/<namespace>/<job type>
            path = path / name
            if not path.is_dir():
                path.mkdir(mode=0o750, parents=True, exist_ok=True)
                if self._log_owner is not None:
                    os.chown(path, *self._log_owner)

    def prepare(self, job_id: int, spec: JobSpec, args: Mapping[str, str], logs: JobLogs,
                has_fabfile: bool = False) -> Launch:
        """Everything about the job's start that can fail on its config (on the loop thread)."""
        command = command_line(spec, args)
        cwd = working_dir(self.settings, spec.namespace, has_fabfile, self.account)
        env = job_environment(self.settings, spec, self.account)
        return Launch(job_id, command, cwd, env, logs, direct.plan(command, env, cwd))

    def spawn(self, launch: Launch) -> LocalRun:
        """Start a prepared job (from any thread): exec it, or ``bash -c`` when it needs bash."""
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            started, used_direct = self._start_process(launch, out_w, err_w)
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        for fd in (out_r, err_r):
            os.set_blocking(fd, False)
        outputs = [Output(out_r, launch.logs.path("stdout"), self._log_owner),
                   Output(err_r, launch.logs.path("stderr"), self._log_owner)]
        return LocalRun(launch.job_id, started, outputs, used_direct)

    def popen_account(self) -> dict:
        """Popen's arguments that run the child as the job account (none without one)."""
        if self.account is None:
            return {}
        return {"user": self.account.uid, "group": self.account.gid, "extra_groups": []}

    def _as_account(self, argv: list[str], executable: str | None
                    ) -> tuple[list[str], str | None, dict]:
        """How to start ``argv`` as the job account. As root, through ``setpriv``, which drops
        to the account and execs the job (Python then vforks, where ``Popen(user=)`` makes it
        copy this whole process: 5-10 times the cost); with only the three capabilities,
        ``Popen(user=, group=, extra_groups=[])``, as an exec'd setpriv would have none."""
        if self.account is None:
            return argv, executable, {}
        if self._setpriv is None:
            return argv, executable, self.popen_account()
        drop = [self._setpriv, f"--reuid={self.account.uid}", f"--regid={self.account.gid}",
                "--clear-groups", "--"]
        return drop + argv, self._setpriv, {}  # setpriv finds argv[0] on the job's PATH

    def _start_process(self, launch: Launch, out: int, err: int) -> tuple[Started, bool]:
        """Start the job: directly when bash is not needed (and the program still execs), else
        under ``bash -c``; also whether bash was skipped."""
        if launch.direct is not None:
            plan = launch.direct
            try:
                return self._exec(plan.argv, plan.executable, plan.env, launch.cwd, out, err), True
            except OSError:
                pass  # gone since, or not executable by the job account: ask bash
        bash = ["bash", "-c", launch.command]
        return self._exec(bash, None, launch.env, launch.cwd, out, err), False

    def _exec(self, argv: list[str], executable: str | None, env: dict[str, str], cwd: Path,
              out: int, err: int) -> Started:
        """Start ``argv`` with the GIL free (dispatcher/spawn.py), or through ``Popen`` where
        glibc cannot, or where ``Popen(user=)`` drops the privileges."""
        argv, executable, account = self._as_account(argv, executable)
        program = executable or direct.find(argv[0], env.get("PATH", ""), cwd)
        if spawn.available and not account and program is not None:
            pid = spawn.spawn(program, argv, env, str(cwd), self._devnull, out, err)
            return pid, functools.partial(spawn.exit_code, pid)
        process = subprocess.Popen(argv, executable=executable, env=env, cwd=cwd,
                                   stdin=self._devnull, stdout=out, stderr=err,
                                   start_new_session=True, close_fds=True, **account)
        return process.pid, process.wait

    def start(self, job_id: int, spec: JobSpec, args: Mapping[str, str], logs: JobLogs,
              has_fabfile: bool = False) -> LocalRun:
        return self.spawn(self.prepare(job_id, spec, args, logs, has_fabfile))


def kill_orphan(pid: int | None, pid_start: int | None, legacy_folder: Path | None = None) -> bool:
    """Kill the process group of a job left behind by a dead dispatcher, if its leader is still
    the same process. Jobs started before migration 0009 have a ``pid`` file instead."""
    if pid is None and legacy_folder is not None:
        try:
            pid_text, start_text = (legacy_folder / "pid").read_text().split()
            pid, pid_start = int(pid_text), int(start_text)
        except (OSError, ValueError):
            return False
    if pid is None or pid_start is None or process_start_time(pid) != pid_start:
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
        return True
    except (ProcessLookupError, PermissionError):
        return False
