"""What every executor and every run looks like, and which executor runs a job: Slurm batch,
Fabric, SSH on a cluster, or here."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from chatops.calc.config import NAMESPACE as CALC_NAMESPACE
from chatops.job_config import Config, JobSpec
from chatops.joblogs import JobLogs
from chatops.queue import Queue
from chatops.report import Report
from chatops.settings import Settings
from dispatcher.batch import BatchExecutor
from dispatcher.calc_run import CalcExecutor
from dispatcher.fabric_jobs import FabricExecutor
from dispatcher.local import LocalExecutor, Output
from dispatcher.ssh import SSHPool
from dispatcher.ssh_jobs import SSHExecutor


class Run(Protocol):
    """A started job, whatever runs it. The loop waits on ``fileno()`` (readable once the run
    has ended), then calls ``wait()`` for the exit code (negative: killed by that signal)."""

    job_id: int
    label: str  # where it runs, for the log ("pid 123", "Slurm batch job on cluster x")
    idle_wait: bool  # waiting for it takes no dispatcher slot (a Slurm batch job)
    handed_over: bool  # left running for the next dispatcher at a stop
    outputs: Sequence[Output]  # the pipes the loop reads (a local job's; none for the others)

    def fileno(self) -> int: ...

    def wait(self) -> int: ...

    def signal(self, sig: int) -> str | None:
        """Send ``sig`` to the whole job (its process group, or scancel); what was done, for
        the log, when it was not "SIGTERM sent to its process group"."""

    def close(self) -> None: ...

    def wake(self) -> None:
        """Something happened to the job elsewhere (a MailProg event): look at it now."""

    def status(self) -> str:
        """Where the job stands beyond its running time, for its live progress ("" for
        nothing: a Slurm batch job tells its Slurm state and queue wait)."""

    def adjust_report(self, outcome: str, report: Report, stop_reason: str | None,
                      exit_code: int) -> tuple[str, Report]:
        """The dispatcher's report, amended by what only the executor knows."""


class Executor(Protocol):
    def start(self, job_id: int, spec: JobSpec, args: Mapping[str, str], logs: JobLogs,
              has_fabfile: bool = False) -> Run: ...


class RemoteExecutors:
    """The executors beyond the local one, sharing one SSH pool (one connection per cluster)."""

    def __init__(self, settings: Settings, config: Config, queue: Queue, local: LocalExecutor,
                 stopping: threading.Event | None = None):
        self.config = config
        self.local = local
        self.pool = SSHPool(config.clusters, settings.environ)
        self.ssh = SSHExecutor(settings, self.pool, queue)
        self.batch = BatchExecutor(settings, queue, self.pool, stopping)
        self.calc = CalcExecutor(settings, queue, self.pool, stopping, config=config)
        self.fabric = FabricExecutor(settings, config, queue, local)

    def for_spec(self, spec: JobSpec) -> Executor:
        namespace = self.config.namespaces.get(spec.namespace)
        if spec.slurm is not None:
            return self.batch_for(spec)
        if namespace is not None and namespace.fabfile:
            return self.fabric  # runs `fab` here, connecting with the cluster's settings
        if spec.cluster is not None:
            return self.ssh
        return self.local

    def batch_for(self, spec: JobSpec) -> BatchExecutor:
        """The executor of a Slurm batch job: a calculation's, or any other's."""
        return self.calc if spec.namespace == CALC_NAMESPACE else self.batch

    def reconfigure(self, config: Config) -> None:
        """A new job_configs.py: new and changed clusters apply to the next job."""
        self.config = config
        self.calc.config = config
        self.fabric.config = config
        self.pool.reconfigure(config.clusters)

    def close(self) -> None:
        self.pool.close()


@dataclass
class Active:
    run: Run
    job_type: str
    spec: JobSpec
    logs: JobLogs
    deadline: float
    stop_reason: str | None = None  # "timed_out" | "cancelled" | "shutdown"
    kill_at: float | None = None
    cancelled_by: str | None = None  # who asked to cancel it, named in its report
