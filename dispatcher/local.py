"""Run a job on this machine: ``bash -c`` in its workspace, in its own process group.

The environment is an allow-list — a job never sees the service's tokens — and every argument
is shell-quoted before it is put into ``run_args_template``.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from chatops.job_config import JobSpec
from chatops.report import Report
from chatops.settings import REPO_ROOT, Settings

BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME")


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


def job_environment(settings: Settings, spec: JobSpec) -> dict[str, str]:
    source = settings.environ
    env = {name: source[name] for name in BASE_ENV if name in source}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["CHATOPS_WRITEABLE_DIR"] = str(settings.writeable_dir)
    for name in spec.env:
        if name in source:
            env[name] = source[name]
    return env


def working_dir(settings: Settings, namespace: str, has_fabfile: bool) -> Path:
    workspace = settings.workspace_dir / namespace
    if workspace.is_dir() and not has_fabfile:
        return workspace
    writeable = settings.writeable_dir / namespace
    writeable.mkdir(parents=True, exist_ok=True)
    return writeable


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (to tell a process from a later one with its pid)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class LocalRun:
    """A started job (a ``dispatcher.executors.Run``); ``fileno()`` is its pidfd, readable when
    it ends."""

    idle_wait = False
    handed_over = False

    def __init__(self, job_id: int, process: subprocess.Popen):
        self.job_id = job_id
        self.process = process
        self._pidfd = os.pidfd_open(process.pid)

    def fileno(self) -> int:
        return self._pidfd

    @property
    def label(self) -> str:
        return f"pid {self.process.pid}"

    def wait(self) -> int:
        """The exit code (negative: killed by that signal); call once fileno() is readable."""
        return self.process.wait()

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        os.close(self._pidfd)

    def wake(self) -> None:
        """Nothing to poll: the pidfd says when the job ends."""

    def adjust_report(self, outcome: str, report: Report, stop_reason: str | None,
                      exit_code: int) -> tuple[str, Report]:
        return outcome, report


class LocalExecutor:
    def __init__(self, settings: Settings):
        self.settings = settings

    def start(self, job_id: int, spec: JobSpec, args: Mapping[str, str], log_dir: Path,
              has_fabfile: bool = False) -> LocalRun:
        command = command_line(spec, args)
        cwd = working_dir(self.settings, spec.namespace, has_fabfile)
        env = job_environment(self.settings, spec)
        with open(log_dir / "stdout", "wb") as out, open(log_dir / "stderr", "wb") as err:
            process = subprocess.Popen(
                ["bash", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True, close_fds=True,
            )
        # Lets a restarted dispatcher find and stop this job if we die without cleaning up.
        (log_dir / "pid").write_text(f"{process.pid} {process_start_time(process.pid)}\n")
        return LocalRun(job_id, process)


def kill_orphan(log_dir: Path) -> bool:
    """Kill a job left behind by a dead dispatcher, if it is still the same process."""
    try:
        pid_text, start = (log_dir / "pid").read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return False
    if process_start_time(pid) != start:
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
        return True
    except (ProcessLookupError, PermissionError):
        return False
