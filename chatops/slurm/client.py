"""A Slurm client with typed results: sinfo, squeue, sacct, scontrol show job, sbatch, scancel.

It knows nothing about SSH: commands go through a *runner*, ``run(argv, timeout) ->
CommandResult``, which may execute them locally (:func:`local_runner`) or on a login node; a
runner raises ``TimeoutError`` when a command overruns. The ``parse_*`` functions turn captured
output into dataclasses without a cluster; value formats (times, sizes, node lists) are in
``chatops.slurm.parse``, accounting records and efficiency in ``chatops.slurm.acct``.

Formats are chosen per command for Slurm 21.08 to 24.x: ``sinfo --json`` (reliable; the 22.05 and
23.02+ shapes are both read), ``squeue -o`` text (22.05's ``--json`` ignores ``-j/-t/-u``),
``sacct -P`` (22.05's JSON reports exit code 0 for failed jobs) and ``scontrol -o show job``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from chatops.slurm.acct import SACCT_FIELDS, AcctJob, AcctRecord, group_jobs, parse_sacct
from chatops.slurm.listing import SQUEUE_FORMAT, Node, QueuedJob, parse_sinfo_json, parse_squeue
from chatops.slurm.parse import (
    expand_nodelist,
    known,
    parse_datetime,
    parse_duration,
    parse_exit_code,
    parse_int,
    parse_keyvalues,
    parse_state,
    parse_tres,
    split_records,
)

__all__ = [
    "CommandResult", "JobInfo", "Node", "QueuedJob", "Runner", "SlurmClient", "SlurmError",
    "Submission", "local_runner", "parse_scontrol_jobs", "parse_sinfo_json", "parse_squeue",
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

    def __init__(self, argv: Sequence[str], message: str, returncode: int | None = None,
                 raw: str = ""):
        super().__init__(f"{argv[0] if argv else 'slurm'}: {message}")
        self.argv = list(argv)
        self.message = message
        self.returncode = returncode
        self.raw = raw  # the output that could not be read, for the log


def _error_text(res: CommandResult) -> str:
    lines = [ln.strip() for ln in (res.stderr or res.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return "; ".join(errors or lines)[:500] or f"exit status {res.returncode}"


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
        stdout = self.run(argv).stdout
        try:
            return parse_sinfo_json(stdout)
        except (ValueError, AttributeError, TypeError) as exc:
            raise SlurmError(argv, f"unreadable JSON: {exc}", raw=stdout) from exc

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
