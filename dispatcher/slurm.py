"""A Slurm client with typed results: sinfo, squeue, sacct, scontrol show job, sbatch, scancel.

It knows nothing about SSH: commands go through a *runner*, ``run(argv, timeout) ->
CommandResult``, which may execute them locally (:func:`local_runner`) or on a login node; a
runner raises ``TimeoutError`` when a command overruns. The ``parse_*`` functions turn captured
output into dataclasses without a cluster; value formats (times, sizes, node lists) are in
``dispatcher.slurm_parse``.

Formats are chosen per command for Slurm 21.08 to 24.x: ``sinfo --json`` (reliable; the 22.05 and
23.02+ shapes are both read), ``squeue -o`` text (22.05's ``--json`` ignores ``-j/-t/-u``),
``sacct -P`` (22.05's JSON reports exit code 0 for failed jobs) and ``scontrol -o show job``.
"""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from dispatcher.slurm_parse import (
    SQUEUE_FORMAT,
    Node,
    QueuedJob,
    expand_nodelist,
    known,
    parse_datetime,
    parse_duration,
    parse_exit_code,
    parse_int,
    parse_keyvalues,
    parse_mem_request,
    parse_sinfo_json,
    parse_size,
    parse_squeue,
    parse_state,
    parse_table,
    parse_tres,
    split_records,
)

__all__ = [
    "AcctJob", "AcctRecord", "CommandResult", "JobEfficiency", "JobInfo", "Node", "QueuedJob",
    "Runner", "SlurmClient", "SlurmError", "Submission", "group_jobs", "job_efficiency",
    "local_runner", "parse_sacct", "parse_scontrol_jobs", "parse_sinfo_json", "parse_squeue",
]


# ------------------------------------------------------------------------------ running commands
@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    def __call__(self, argv: list[str], timeout: float) -> CommandResult: ...


def local_runner(argv: list[str], timeout: float) -> CommandResult:
    """Run ``argv`` here (no shell). A missing program gives returncode 127, like a shell."""
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, errors="replace",
            stdin=subprocess.DEVNULL, timeout=timeout, check=False,
        )
    except FileNotFoundError:
        return CommandResult(127, "", f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired as exc:
        raise TimeoutError(f"{argv[0]} did not finish within {timeout:g}s") from exc
    return CommandResult(proc.returncode, proc.stdout, proc.stderr)


class SlurmError(RuntimeError):
    """A Slurm command failed; ``message`` is Slurm's own error text where it printed one."""

    def __init__(self, argv: Sequence[str], message: str, returncode: int | None = None):
        super().__init__(f"{argv[0] if argv else 'slurm'}: {message}")
        self.argv = list(argv)
        self.message = message
        self.returncode = returncode


def _error_text(res: CommandResult) -> str:
    lines = [ln.strip() for ln in (res.stderr or res.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return "; ".join(errors or lines)[:500] or f"exit status {res.returncode}"


# ------------------------------------------------------------------------------ sacct
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
    )


# ------------------------------------------------------------------------------ scontrol show job
@dataclass(frozen=True)
class JobInfo:
    job_id: int
    name: str = ""
    state: str = ""
    reason: str = ""
    user: str = ""
    uid: int | None = None
    account: str = ""
    qos: str = ""
    partition: str = ""
    array_job_id: int | None = None
    array_task: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    run_time: float | None = None
    time_limit: float | None = None
    submit_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    nodes: tuple[str, ...] = ()
    num_nodes: int | None = None
    num_cpus: int | None = None
    num_tasks: int | None = None
    tres: dict[str, int | float] = field(default_factory=dict)
    work_dir: str = ""
    stdout: str = ""
    stderr: str = ""
    mail_user: str = ""
    mail_type: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # every key as printed

    @property
    def display_id(self) -> str:
        """``14_3`` for an array task, else the job id."""
        return f"{self.array_job_id}_{self.array_task}" if self.array_task else str(self.job_id)


def parse_scontrol_jobs(text: str) -> list[JobInfo]:
    """Jobs from ``scontrol [-o] show job`` (one-line or multi-line records)."""
    jobs = []
    for record in split_records(text, "JobId"):
        f = parse_keyvalues(record)
        user, _, uid = f.get("UserId", "").partition("(")
        exit_code, signal = parse_exit_code(f.get("ExitCode"))
        task = f.get("ArrayTaskId")
        jobs.append(JobInfo(
            job_id=parse_int(f.get("JobId")) or 0, name=f.get("JobName", ""),
            state=parse_state(f.get("JobState"))[0], reason=known(f.get("Reason")),
            user=user, uid=parse_int(uid.rstrip(")")), account=known(f.get("Account")),
            qos=known(f.get("QOS")), partition=f.get("Partition", ""),
            array_job_id=parse_int(f.get("ArrayJobId")), array_task=task or None,
            exit_code=exit_code, signal=signal, run_time=parse_duration(f.get("RunTime")),
            time_limit=parse_duration(f.get("TimeLimit")),
            submit_time=parse_datetime(f.get("SubmitTime")),
            start_time=parse_datetime(f.get("StartTime")),
            end_time=parse_datetime(f.get("EndTime")),
            nodes=tuple(expand_nodelist(f.get("NodeList"))), num_nodes=parse_int(f.get("NumNodes")),
            num_cpus=parse_int(f.get("NumCPUs")), num_tasks=parse_int(f.get("NumTasks")),
            tres=parse_tres(f.get("TRES")), work_dir=f.get("WorkDir", ""),
            stdout=f.get("StdOut", ""), stderr=f.get("StdErr", ""),
            mail_user=f.get("MailUser", ""), mail_type=f.get("MailType", ""), fields=f,
        ))
    return jobs


# ------------------------------------------------------------------------------ the client
@dataclass(frozen=True)
class Submission:
    job_id: int
    cluster: str | None = None


def _ids(job_ids: Iterable[int | str]) -> str:
    return ",".join(str(j) for j in job_ids)


class SlurmClient:
    """Slurm commands through a runner; every method returns dataclasses or raises SlurmError."""

    def __init__(self, runner: Runner = local_runner, timeout: float = 30.0):
        self.runner = runner
        self.timeout = timeout

    def run(self, argv: list[str]) -> CommandResult:
        """Run one command; a non-zero exit or a timeout raises SlurmError."""
        return self._check(argv, self._call(argv))

    def _check(self, argv: list[str], res: CommandResult) -> CommandResult:
        if res.returncode != 0:
            raise SlurmError(argv, _error_text(res), res.returncode)
        return res

    def _call(self, argv: list[str]) -> CommandResult:
        try:
            return self.runner(argv, self.timeout)
        except TimeoutError as exc:
            raise SlurmError(argv, f"timed out after {self.timeout:g}s") from exc

    def _run_job_query(self, argv: list[str]) -> CommandResult | None:
        """Like run(), but an unknown job id ("Invalid job id specified") gives None."""
        res = self._call(argv)
        return None if res.returncode and "Invalid job id" in res.stderr else self._check(argv, res)

    def sinfo(self, partition: str | None = None) -> list[Node]:
        argv = ["sinfo", "--json"] + (["-p", partition] if partition else [])
        try:
            return parse_sinfo_json(self.run(argv).stdout)
        except (ValueError, AttributeError) as exc:
            raise SlurmError(argv, f"unreadable JSON: {exc}") from exc

    def squeue(
        self,
        job_ids: Iterable[int | str] = (),
        *,
        user: str | None = None,
        states: Iterable[str] = (),
        partition: str | None = None,
    ) -> list[QueuedJob]:
        """Jobs slurmctld knows. Asking for job ids also returns finished ones (MinJobAge)."""
        argv = ["squeue", "-h", "-o", SQUEUE_FORMAT]
        ids, wanted = _ids(job_ids), ",".join(states)
        argv += (["-j", ids] if ids else []) + (["-u", user] if user else [])
        argv += ["-t", wanted or "all"] if (wanted or ids) else []
        argv += ["-p", partition] if partition else []
        res = self._run_job_query(argv)
        return parse_squeue(res.stdout) if res else []

    def sacct(
        self,
        job_ids: Iterable[int | str] = (),
        *,
        user: str | None = None,
        all_users: bool = False,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        states: Iterable[str] = (),
    ) -> list[AcctRecord]:
        argv = ["sacct", "-P", "-o", ",".join(SACCT_FIELDS)]
        ids, wanted = _ids(job_ids), ",".join(states)
        argv += (["-j", ids] if ids else []) + (["-u", user] if user else [])
        argv += ["-a"] if all_users and not user else []
        for flag, when in (("-S", start), ("-E", end)):
            if when is not None:
                value = when.isoformat(timespec="seconds") if isinstance(when, datetime) else when
                argv += [flag, value]
        argv += ["-s", wanted] if wanted else []  # (sacct then defaults -S to now)
        return parse_sacct(self.run(argv).stdout)

    def sacct_jobs(self, job_ids: Iterable[int | str] = (), **kwargs: Any) -> list[AcctJob]:
        """:meth:`sacct`, grouped into jobs with their steps."""
        return group_jobs(self.sacct(job_ids, **kwargs))

    def show_job(self, job_id: int | str) -> list[JobInfo]:
        """``scontrol show job``: one JobInfo, or one per task of an array; [] if unknown."""
        res = self._run_job_query(["scontrol", "-o", "show", "job", str(job_id)])
        return parse_scontrol_jobs(res.stdout) if res else []

    def sbatch(
        self,
        script: str | None = None,
        *,
        wrap: str | None = None,
        options: Mapping[str, str | int | bool | None] | None = None,
        script_args: Sequence[str] = (),
    ) -> Submission:
        """Submit ``script`` (a path where the runner runs) or ``wrap`` (a command line).

        ``options`` become long options: ``{"job-name": "x", "time": "5", "hold": True}`` ->
        ``--job-name=x --time=5 --hold``; None/False are left out.
        """
        if (script is None) == (wrap is None):
            raise ValueError("give exactly one of script or wrap")
        argv = ["sbatch", "--parsable"]
        for key, value in (options or {}).items():
            if not re.fullmatch(r"[a-z][a-z0-9-]*", key):
                raise ValueError(f"not an sbatch option name: {key!r}")
            if value is True:
                argv.append(f"--{key}")
            elif value is not None and value is not False:
                argv.append(f"--{key}={value}")
        argv += [f"--wrap={wrap}"] if wrap is not None else [str(script), *script_args]
        res = self.run(argv)
        last = (res.stdout.strip().splitlines() or [""])[-1]
        job_id, _, cluster = last.partition(";")
        if not job_id.strip().isdigit():
            raise SlurmError(argv, f"unexpected sbatch output: {res.stdout.strip()[:200]!r}")
        return Submission(int(job_id), cluster.strip() or None)

    def scancel(self, job_id: int | str, *, signal: str | None = None) -> None:
        """Cancel (or signal) a job. Raises SlurmError for an unknown or finished job.

        Plain scancel exits 0 silently for those; with ``-v`` it at least prints the error.
        """
        argv = ["scancel", "-v"] + ([f"--signal={signal}"] if signal else []) + [str(job_id)]
        res = self.run(argv)
        errors = [ln.strip() for ln in res.stderr.splitlines() if "error:" in ln]
        if errors:
            raise SlurmError(argv, "; ".join(errors)[:500], res.returncode)
