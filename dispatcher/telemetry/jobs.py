"""The ``job`` operation (role ``master``): ``sacct`` over the window, one record per job step.

Records are Sonar's ``SlurmJob``: the raw job id and step from ``JobIDRaw``, array and het job
ids from ``JobID``, times with the master's offset, the time limit and priority as
``ExtendedUint`` (0 unset, 1 infinite, n + 2), memory in KiB, and the accounting figures in the
``sacct`` object; the requested resources come from ``scontrol show job`` (``ReqTRES``, or
``TRES`` before Slurm 24), which knows only jobs it still holds. Zero and empty values are left
out, as Sonar does. Commands run through the Slurm client (:mod:`chatops.slurm.client`) with
the programs ``[programs]`` names.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from chatops.slurm.client import (
    CommandResult,
    SlurmClient,
    SlurmError,
    local_runner,
    parse_scontrol_jobs,
)
from chatops.slurm.parse import (
    parse_datetime,
    parse_duration,
    parse_exit_code,
    parse_int,
    parse_size,
    parse_state,
    parse_table,
)
from dispatcher.telemetry.envelope import local_timestamp

log = logging.getLogger(__name__)

FINAL_STATES = ("CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "OUT_OF_MEMORY", "TIMEOUT")
OPEN_STATES = ("PENDING", "RUNNING")
# Sonar's columns, JobName last (it may contain '|').
SACCT_FIELDS = (
    "JobID", "JobIDRaw", "User", "Account", "State", "Start", "End", "AveCPU", "AveDiskRead",
    "AveDiskWrite", "AveRSS", "AveVMSize", "ElapsedRaw", "ExitCode", "Layout", "MaxRSS",
    "MaxVMSize", "MinCPU", "ReqCPUS", "ReqMem", "ReqNodes", "Reservation", "Submit",
    "Suspended", "SystemCPU", "TimelimitRaw", "UserCPU", "NodeList", "Partition", "AllocTRES",
    "Priority", "JobName",
)
_SIZES_KIB = ("AveDiskRead", "AveDiskWrite", "AveRSS", "AveVMSize", "MaxRSS", "MaxVMSize")
_SECONDS = ("AveCPU", "MinCPU", "SystemCPU", "UserCPU")


def slurm_client(programs: Mapping[str, str], timeout: float = 120.0) -> SlurmClient:
    """A client running Slurm's commands here, as ``[programs]`` names them ("" disables:
    the command then prints nothing, as in Sonar)."""
    def runner(argv: list[str], timeout: float) -> CommandResult:
        program = programs.get(argv[0], argv[0])
        if not program:
            return CommandResult(0, "", "")
        return local_runner([program, *argv[1:]], timeout)
    return SlurmClient(runner, timeout=timeout)


def collect(client: SlurmClient, window_seconds: int, uncompleted: bool) -> list[dict[str, Any]]:
    """Every job step in the window; raises SlurmError when sacct fails."""
    states = FINAL_STATES + (OPEN_STATES if uncompleted else ())
    out = client.run(["sacct", "-aP", "--noheader", "-s", ",".join(states),
                      "-o", ",".join(SACCT_FIELDS), "-S", f"now-{window_seconds}",
                      "-E", "now"]).stdout
    return records(out, requested_resources(client))


def requested_resources(client: SlurmClient) -> dict[int, str]:
    """Job id -> requested TRES, for the jobs slurmctld still holds ({} if scontrol fails)."""
    try:
        out = client.run(["scontrol", "-o", "show", "job"]).stdout
    except SlurmError as exc:
        log.warning("no requested resources this time: %s", exc)
        return {}
    found = {}
    for job in parse_scontrol_jobs(out):
        tres = job.fields.get("ReqTRES") or job.fields.get("TRES")
        if tres:
            found[job.job_id] = tres
    return found


def _extended(value: int | None) -> int:
    return 0 if value is None else value + 2


def node_ranges(text: str) -> list[str]:
    """``c1-[1-3],c2-5`` -> ``["c1-[1-3]", "c2-5"]`` (Sonar's HostnameRange items)."""
    if not text or text.strip().lower() in ("none assigned", "none", "(null)", "unknown"):
        return []
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


def _time(text: str) -> str | None:
    when = parse_datetime(text)
    return local_timestamp(when) if when else None


def _kib(text: str) -> int | None:
    size = parse_size(text, default_unit="M")
    return size // 1024 if size is not None else None


def records(sacct_text: str, tres: Mapping[int, str] | None = None) -> list[dict[str, Any]]:
    """``SlurmJob`` records from ``sacct -P --noheader -o SACCT_FIELDS`` output."""
    tres = tres or {}
    out = []
    for row in parse_table(sacct_text, columns=list(SACCT_FIELDS), free="JobName"):
        raw_id, _, step = row["JobIDRaw"].partition(".")
        job_id = parse_int(raw_id)
        state = parse_state(row["State"])[0]
        if not job_id or not state:
            continue
        shown = row["JobID"].partition(".")[0]
        array_id, array_sep, task = shown.partition("_")
        het_id, het_sep, offset = shown.partition("+")
        limit = row["TimelimitRaw"].strip()
        fields: dict[str, Any] = {
            "job_id": job_id, "job_step": step, "job_name": row["JobName"], "job_state": state,
            "array_job_id": parse_int(array_id) if array_sep else None,
            "array_task_id": parse_int(task) if array_sep else None,
            "het_job_id": parse_int(het_id) if het_sep else None,
            "het_job_offset": parse_int(offset) if het_sep else None,
            "user_name": row["User"], "account": row["Account"],
            "submit_time": _time(row["Submit"]),
            "time_limit": 1 if limit.upper() == "UNLIMITED" else _extended(parse_int(limit)),
            "partition": row["Partition"], "reservation": row["Reservation"],
            "nodes": node_ranges(row["NodeList"]),
            "priority": _extended(parse_int(row["Priority"])),
            "distribution": "" if row["Layout"] == "Unknown" else row["Layout"],
            "requested_resources": tres.get(job_id, ""),
            "allocated_resources": row["AllocTRES"],
            "requested_cpus": parse_int(row["ReqCPUS"]),
            "requested_memory_per_node": _kib(row["ReqMem"]),
            "requested_node_count": parse_int(row["ReqNodes"]),
            "start_time": _time(row["Start"]), "suspend_time": int(
                parse_duration(row["Suspended"]) or 0),
            "end_time": _time(row["End"]), "exit_code": parse_exit_code(row["ExitCode"])[0],
        }
        sacct: dict[str, Any] = {"AllocTRES": row["AllocTRES"],
                                 "ElapsedRaw": parse_int(row["ElapsedRaw"])}
        for name in _SECONDS:
            sacct[name] = int(parse_duration(row[name]) or 0)
        for name in _SIZES_KIB:
            sacct[name] = _kib(row[name])
        record = {k: v for k, v in fields.items() if v}
        sacct = {k: v for k, v in sacct.items() if v}
        if sacct:
            record["sacct"] = sacct
        out.append(record)
    return out


# Kafka's brokers take messages of at most 1 MB unless told otherwise (message.max.bytes): the
# records of one envelope stay well below, whatever the number of jobs in the window.
MAX_RECORDS_BYTES = 800_000


def batches(items: list[Any], size: int | None,
            max_bytes: int = MAX_RECORDS_BYTES) -> list[list[Any]]:
    """``items`` in runs of at most ``size`` records and about ``max_bytes`` of JSON (one run,
    possibly empty, when all fit)."""
    runs: list[list[Any]] = [[]]
    used = 0
    for item in items:
        length = len(json.dumps(item, separators=(",", ":"))) + 1
        if runs[-1] and ((size and len(runs[-1]) >= size) or used + length > max_bytes):
            runs.append([])
            used = 0
        runs[-1].append(item)
        used += length
    return runs
