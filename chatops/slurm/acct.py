"""Slurm accounting: ``sacct -P`` records, grouped into jobs with their steps, and efficiency.

``parse_sacct`` reads the pipe-separated text (22.05's ``--json`` reports exit code 0 for failed
jobs, so text it is); ``group_jobs`` puts each job's steps under it; ``job_efficiency`` gives
the CPU, memory and time-limit use that reports and notification hints are built from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from chatops.slurm.parse import (
    expand_nodelist,
    parse_datetime,
    parse_duration,
    parse_exit_code,
    parse_int,
    parse_mem_request,
    parse_size,
    parse_state,
    parse_table,
)

SACCT_FIELDS = (
    "JobID", "JobIDRaw", "State", "ExitCode", "Elapsed", "TotalCPU", "AllocCPUS", "ReqMem",
    "MaxRSS", "NTasks", "Timelimit", "NNodes", "NodeList", "QOS", "Partition", "Account",
    "User", "Submit", "Start", "End", "JobName",
)


@dataclass(frozen=True)
class AcctRecord:
    """One ``sacct`` line: a job (allocation) or one of its steps (``step`` is then set)."""

    job_id: str  # "11", "14_1", "16_[1-3]"; without the step
    step: str | None = None  # None for the job line; "batch", "extern", "0", ...
    state: str = ""  # "CANCELLED by 0" -> "CANCELLED" with cancelled_by=0
    cancelled_by: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    raw_id: int | None = None
    array_job_id: int | None = None
    array_task: str | None = None
    name: str = ""
    user: str = ""
    account: str = ""
    qos: str = ""
    partition: str = ""
    elapsed: float | None = None
    total_cpu: float | None = None
    alloc_cpus: int | None = None
    req_mem: str = ""  # as printed
    req_mem_bytes: int | None = None  # the job's total, per-node/per-CPU requests multiplied out
    max_rss_bytes: int | None = None  # largest task of the step (steps only)
    ntasks: int | None = None
    time_limit: float | None = None
    num_nodes: int | None = None
    nodes: tuple[str, ...] = ()
    submit_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None

    @property
    def provisional(self) -> bool:
        """slurmdbd's stand-in for a job whose start message has not arrived yet.

        For about 2 s after a short job ends, sacct shows it with JobName ``allocation``, no
        partition, QOS ``Unknown`` and a garbled ReqMem (``16?``); state and exit code are
        already right. Poll again until this is False before reporting names or efficiency.
        """
        return self.step is None and self.name == "allocation" and not self.partition


@dataclass
class AcctJob:
    """A job line with its steps."""

    job: AcctRecord
    steps: list[AcctRecord] = field(default_factory=list)

    def step(self, name: str) -> AcctRecord | None:
        return next((s for s in self.steps if s.step == name), None)

    @property
    def signal(self) -> int | None:
        """The signal that ended the job: Slurm records a TIMEOUT's or a scancel's SIGTERM on
        the batch step (``0:15``) while the job line says ``0:0``."""
        if self.job.signal:
            return self.job.signal
        steps = sorted(self.steps, key=lambda s: s.step != "batch")  # the batch step first
        return next((s.signal for s in steps if s.signal), None)

    @property
    def started(self) -> bool:
        """Whether it ran at all (a job cancelled while pending has no steps)."""
        return bool(self.steps) or bool(self.job.elapsed)


def parse_sacct(text: str) -> list[AcctRecord]:
    """Records from ``sacct -P`` with its header line, whatever the chosen columns."""
    records = []
    for r in parse_table(text, free="JobName"):
        job_id, _, step = r.get("JobID", "").partition(".")
        if not job_id:
            continue
        array_id, sep, task = job_id.partition("_")
        state, by = parse_state(r.get("State"))
        exit_code, signal = parse_exit_code(r.get("ExitCode"))
        cpus = parse_int(r.get("AllocCPUS", r.get("NCPUS")))
        nnodes = parse_int(r.get("NNodes"))
        mem, per = parse_mem_request(r.get("ReqMem"))
        if mem is not None and per is not None:
            mem = mem * (nnodes or 1) if per == "node" else mem * cpus if cpus else None
        records.append(AcctRecord(
            job_id=job_id, step=step or None, state=state, cancelled_by=by,
            exit_code=exit_code, signal=signal,
            raw_id=parse_int(r.get("JobIDRaw", "").partition(".")[0]) or parse_int(job_id),
            array_job_id=parse_int(array_id) if sep else None,
            array_task=task.strip("[]") if sep else None,
            name=r.get("JobName", ""), user=r.get("User", ""), account=r.get("Account", ""),
            qos=r.get("QOS", ""), partition=r.get("Partition", ""),
            elapsed=parse_duration(r.get("Elapsed")), total_cpu=parse_duration(r.get("TotalCPU")),
            alloc_cpus=cpus, req_mem=r.get("ReqMem", ""), req_mem_bytes=mem,
            max_rss_bytes=parse_size(r.get("MaxRSS"), default_unit="K"),
            ntasks=parse_int(r.get("NTasks")), time_limit=parse_duration(r.get("Timelimit")),
            num_nodes=nnodes, nodes=tuple(expand_nodelist(r.get("NodeList"))),
            submit_time=parse_datetime(r.get("Submit")),
            start_time=parse_datetime(r.get("Start")), end_time=parse_datetime(r.get("End")),
        ))
    return records


def group_jobs(records: Iterable[AcctRecord]) -> list[AcctJob]:
    """Attach steps to their job line, keeping sacct's order (array tasks are separate jobs)."""
    jobs: dict[str, AcctJob] = {}
    for rec in records:
        if rec.step is None or rec.job_id not in jobs:
            jobs.setdefault(rec.job_id, AcctJob(rec))
            if rec.step is None:
                jobs[rec.job_id].job = rec
                continue
        jobs[rec.job_id].steps.append(rec)
    return list(jobs.values())


@dataclass(frozen=True)
class JobEfficiency:
    """How much of what a job asked for it used; a ratio is None when data is missing."""

    cpu_efficiency: float | None = None  # TotalCPU / (Elapsed x AllocCPUS)
    memory_efficiency: float | None = None  # memory_used / memory_requested
    walltime_use: float | None = None  # Elapsed / Timelimit
    cpu_seconds: float | None = None
    cpu_seconds_allocated: float | None = None
    memory_used_bytes: int | None = None  # max over steps of MaxRSS x the step's nodes
    memory_requested_bytes: int | None = None  # the job's total request
    elapsed: float | None = None
    time_limit: float | None = None
    cpus: int | None = None  # allocated


def job_efficiency(records: AcctJob | Iterable[AcctRecord]) -> JobEfficiency:
    """Efficiency of one job from its sacct job line and steps; never raises.

    MaxRSS is the largest task of a step. Slurm does not sum it over a step's nodes, so the
    step's peak is estimated as MaxRSS x its node count (the per-node peak times the nodes) and
    compared with the job's total request (per node x nodes, per CPU x CPUs, or the total).
    """
    try:
        job = records if isinstance(records, AcctJob) else (group_jobs(records) or [None])[0]
        return _efficiency(job) if job is not None else JobEfficiency()
    except (ArithmeticError, TypeError, ValueError, AttributeError):
        return JobEfficiency()


def _efficiency(job: AcctJob) -> JobEfficiency:
    head = job.job
    step_cpu = [s.total_cpu for s in job.steps if s.total_cpu is not None]
    cpu = head.total_cpu if head.step is None else None
    if (cpu is None or cpu == 0) and step_cpu:  # `sacct -X` prints 0 on the job line
        cpu = sum(step_cpu)
    elapsed = head.elapsed
    allocated = elapsed * head.alloc_cpus if elapsed is not None and head.alloc_cpus else None
    used = [s.max_rss_bytes * (s.num_nodes or 1) for s in job.steps if s.max_rss_bytes is not None]
    mem_used = max(used) if used else None
    mem_req = head.req_mem_bytes if head.step is None else None
    limit = head.time_limit
    return JobEfficiency(
        cpu_efficiency=cpu / allocated if cpu is not None and allocated else None,
        memory_efficiency=mem_used / mem_req if mem_used is not None and mem_req else None,
        walltime_use=(elapsed / limit if elapsed is not None and limit and limit != math.inf
                      else None),
        cpu_seconds=cpu, cpu_seconds_allocated=allocated, memory_used_bytes=mem_used,
        memory_requested_bytes=mem_req, elapsed=elapsed, time_limit=limit,
        cpus=head.alloc_cpus,
    )
