"""Fabric jobs: a namespace's ``fabfile`` (a URL or a path) and ``fab <task>`` job commands.

As in bennettbot, the fabfile is put into the namespace's writeable directory and ``fab`` runs
there — here, Fabric 3 through ``dispatcher.fab_main`` (strict host keys), connecting with the
settings of the namespace's (or job's) cluster. A URL is fetched with a timeout; when the fetch
fails and an earlier copy exists, the cached copy runs and the report says so. Fetching happens
in the job's thread, never in the dispatcher loop.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from chatops.job_config import Config, JobSpec
from chatops.joblogs import JobLogs
from chatops.queue import Queue
from chatops.report import Report
from chatops.settings import Settings
from dispatcher.local import (
    LocalExecutor,
    command_line,
    job_environment,
    process_start_time,
    working_dir,
)
from dispatcher.threadrun import ThreadRun

FETCH_TIMEOUT = 10.0
MAX_FABFILE_BYTES = 5 * 1024 * 1024


class FetchError(Exception):
    pass


def fetch_fabfile(source: str, dest_dir: Path, workspace: Path, timeout: float) -> str | None:
    """Put the fabfile into ``dest_dir``; return a note when a cached copy had to be used."""
    target = dest_dir / "fabfile.py"
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=timeout) as response:
                data = response.read(MAX_FABFILE_BYTES + 1)
            if len(data) > MAX_FABFILE_BYTES:
                raise FetchError(f"it is larger than {MAX_FABFILE_BYTES // 2**20} MiB")
        except (OSError, FetchError) as exc:
            if not target.is_file():
                raise FetchError(f"could not fetch the fabfile {source}: {exc}") from exc
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(target.stat().st_mtime))
            return (f"Could not fetch the fabfile {source} ({exc}); ran the cached copy "
                    f"from {when}.")
        partial = target.with_name(f".fabfile.{os.getpid()}.{threading.get_ident()}")
        partial.write_bytes(data)
        partial.replace(target)  # atomic: a job never sees half a fabfile
        return None
    path = Path(source) if Path(source).is_absolute() else workspace / source
    if not path.is_file():
        raise FetchError(f"the fabfile {path} does not exist")
    shutil.copyfile(path, target)
    return None


class FabricRun(ThreadRun):
    def __init__(self, executor: FabricExecutor, job_id: int, spec: JobSpec, command: str,
                 logs: JobLogs):
        super().__init__(job_id, "fab")
        self.executor = executor
        self.spec = spec
        self.command = command
        self.logs = logs
        self.note: str | None = None
        self.process: subprocess.Popen | None = None
        self._stop: int | None = None

    def main(self) -> None:
        settings = self.executor.settings
        namespace = self.executor.config.namespaces[self.spec.namespace]
        local = self.executor.local
        cwd = working_dir(settings, self.spec.namespace, True, local.account)
        try:
            self.note = fetch_fabfile(namespace.fabfile, cwd,
                                      settings.workspace_dir / self.spec.namespace,
                                      self.executor.fetch_timeout)
        except FetchError as exc:
            self.error = str(exc)
            return
        env = self.executor.environment(self.spec, cwd)
        if self._stop is not None:
            self.exit_code = -self._stop
            return
        # fab talks to the cluster for ≥ 100 ms: log files made up front cost nothing here.
        with open(self.logs.path("stdout"), "wb") as out, \
                open(self.logs.path("stderr"), "wb") as err:
            self.process = subprocess.Popen(
                ["bash", "-c", self.command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True, close_fds=True,
                **local.popen_account())
        pid = self.process.pid
        self.executor.queue.finish_many([], processes=[(self.job_id, pid,
                                                         process_start_time(pid))])
        self.label = f"fab, pid {pid}"
        if self._stop is not None:
            self.signal(self._stop)
        self.exit_code = self.process.wait()

    def signal(self, sig: int) -> None:
        self._stop = sig
        if self.process is not None and self.process.returncode is None:
            try:
                os.killpg(self.process.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def adjust_report(self, outcome: str, report: Report, stop_reason: str | None,
                      exit_code: int) -> tuple[str, Report]:
        if self.error:
            what = f"failed: {self.error}"
            return "failed", Report(job_id=self.job_id, job_type=self.spec.type,
                                    namespace=self.spec.namespace, outcome="failed",
                                    text=f"`{self.spec.type}` (job {self.job_id}) {what}.",
                                    details={"summary": what})
        if self.note:
            report.note = f"{report.note}\n{self.note}" if report.note else self.note
        return outcome, report


class FabricExecutor:
    def __init__(self, settings: Settings, config: Config, queue: Queue, local: LocalExecutor):
        self.settings = settings
        self.config = config
        self.queue = queue
        self.local = local
        self.fetch_timeout = float(settings.environ.get("CHATOPS_FABFILE_TIMEOUT")
                                   or FETCH_TIMEOUT)

    def start(self, job_id: int, spec: JobSpec, args: Mapping[str, str], logs: JobLogs,
              has_fabfile: bool = True) -> FabricRun:
        run = FabricRun(self, job_id, spec, command_line(spec, args), logs)
        run.start_thread(run.main)
        return run

    def environment(self, spec: JobSpec, cwd: Path) -> dict[str, str]:
        """The local job environment, with `fab` meaning Fabric with strict host keys."""
        env = job_environment(self.settings, spec, self.local.account)
        bin_dir = cwd / ".chatops-bin"
        bin_dir.mkdir(exist_ok=True)
        _write_atomic(bin_dir / "fab",
                      f"#!/bin/sh\nexec {sys.executable} -m dispatcher.fab_main \"$@\"\n", 0o755)
        env["PATH"] = f"{bin_dir}:{env['PATH']}"
        cluster = self.config.clusters.get(spec.cluster or "")
        project: dict = {"load_ssh_configs": False}
        if cluster is not None:
            env["CHATOPS_FAB_HOST"] = cluster.host
            env["CHATOPS_FAB_KNOWN_HOSTS"] = cluster.known_hosts
            project.update(user=cluster.user, port=cluster.port,
                           timeouts={"connect": int(cluster.connect_timeout)},
                           connect_kwargs={"key_filename": [cluster.key_file]
                                           if cluster.key_file else [],
                                           "look_for_keys": False,
                                           "allow_agent": cluster.agent})
            name = cluster.key_passphrase_env
            if name and name in self.settings.environ:  # the one secret this job needs
                env["CHATOPS_FAB_PASSPHRASE_ENV"] = name
                env[name] = self.settings.environ[name]
        _write_atomic(cwd / "fabric.json", json.dumps(project, indent=2), 0o644)
        return env


def _write_atomic(path: Path, text: str, mode: int) -> None:
    """Jobs of one namespace may start together: none may read a half-written file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(text)
    partial.chmod(mode)
    partial.replace(path)
