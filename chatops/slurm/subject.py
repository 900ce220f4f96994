"""Slurm MailProg subject lines, for Slurm without the ``SLURM_*`` environment (before 21.08).

The subject grammar is slurmctld's (src/slurmctld/agent.c, ``mail_job_info``)::

    Slurm Job_id=<id> Name=<name> <mail type><job time><term info>
    Slurm Array Task Job_id=<array id>_<task> (<id>) Name=<name> <mail type><job time><term info>
    Slurm Array Summary Job_id=<array id>_* (<id>) Name=<name> <mail type><term info>

    mail type  Began | Ended | Failed | Requeued | Invalid dependency | StageOut/Teardown |
               Reached time limit | Reached NN% of time limit          ("SLURM" before 15.08)
    job time   ", Queued time T" (Began) | ", Run time T" (Ended/Failed/Requeued/Reached...) |
               " time " (StageOut; the value only in SLURM_JOB_STAGE_OUT_TIME)
               T = [D-]HH:MM:SS | INVALID | UNLIMITED
    term info  (Ended/Failed only) ", STATE, ExitCode N" if the job exited, ", STATE" if a
               signal killed it (no signal number in the subject); array summaries:
               ", STATE|Mixed, ExitCode [MIN-MAX]" | ", Mixed, MaxSignal [S]" |
               ", Mixed, MaxExitCode [N]", each optionally followed by ", with requeued tasks".

The job name is everything between ``Name=`` and the last mail type that the strict grammar
accepts after it, so names with spaces, commas, ``=`` or mail-type words parse correctly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from chatops.slurm.parse import parse_duration, parse_int

#: slurmctld's mail type texts -> the --mail-type names.
MAIL_TYPES: dict[str, str] = {
    "Began": "BEGIN",
    "Ended": "END",
    "Failed": "FAIL",
    "Requeued": "REQUEUE",
    "Invalid dependency": "INVALID_DEPEND",
    "StageOut/Teardown": "STAGE_OUT",
    "Reached time limit": "TIME_LIMIT",
    "Reached 90% of time limit": "TIME_LIMIT_90",
    "Reached 80% of time limit": "TIME_LIMIT_80",
    "Reached 50% of time limit": "TIME_LIMIT_50",
}
UNKNOWN_MAIL_TYPE = "UNKNOWN"

_TIME = r"(?:\d+-)?\d+:\d\d:\d\d|INVALID|UNLIMITED"
_MAIL_TYPE = (
    r"Began|Ended|Failed|Requeued|Invalid dependency|StageOut/Teardown"
    r"|Reached time limit|Reached \d{1,3}% of time limit|unknown"
)
_HEAD = (
    r"\s*(?:SLURM|Slurm)\s+(?:(?P<kind>Array Summary|Array Task)\s+)?"
    r"Job_id=(?P<ref>\d+(?:_(?:\d+|\*))?)(?:\s+\((?P<record>\d+)\))?"
)
_SUBJECT = re.compile(
    _HEAD
    + r"\s+Name=(?P<name>.*)\s(?P<mt>"
    + _MAIL_TYPE
    + r")(?:, (?P<tkind>Queued|Run) time (?P<time>"
    + _TIME
    + r")| time(?: (?P<stime>"
    + _TIME
    + r"))?)?(?:, (?P<state>[A-Z][A-Z_]*|Mixed)(?:, (?:ExitCode (?P<ec>-?\d+)"
    r"|ExitCode \[(?P<ecmin>-?\d+)-(?P<ecmax>-?\d+)\]|MaxSignal \[(?P<maxsig>\d+)\]"
    r"|MaxExitCode \[(?P<maxec>-?\d+)\]))?)?(?P<requeued>, with requeued tasks)?\s*",
    re.DOTALL,
)
# When the strict grammar fails (a future or patched slurmctld): take what can be recognised.
_LOOSE_HEAD = re.compile(_HEAD + r"(?:\s+Name=(?P<rest>.*))?", re.DOTALL)
_LOOSE_MT = re.compile(r"(?:^|\s)(?P<mt>" + _MAIL_TYPE + r")(?!\w)")
_LOOSE_TIME = re.compile(r"(?P<tkind>Queued|Run) time (?P<time>" + _TIME + r")")
_LOOSE_STATE = re.compile(r", (?P<state>[A-Z][A-Z_]+|Mixed)(?=,|$)")
_LOOSE_EC = re.compile(r"ExitCode (?:(?P<ec>-?\d+)|\[(?P<ecmin>-?\d+)-(?P<ecmax>-?\d+)\])")
_PERCENT = re.compile(r"Reached (\d{1,3})% of time limit")


@dataclass(frozen=True)
class SubjectInfo:
    """What a subject line says (all None when it says nothing about a field)."""

    matched: bool = False  # the strict grammar matched (else a best-effort reading)
    job_id: int | None = None  # the job record's id (in parentheses for arrays)
    array_job_id: int | None = None
    array_task_id: int | None = None
    array_summary: bool = False
    job_name: str | None = None
    mail_type_text: str | None = None
    state: str | None = None  # never "Mixed": see ``mixed``
    mixed: bool = False
    exit_code: int | None = None
    exit_code_min: int | None = None
    exit_code_max: int | None = None
    signal: int | None = None
    signaled: bool = False  # Ended/Failed with a state but no ExitCode: a signal killed it
    run_time_seconds: int | None = None
    queued_time_seconds: int | None = None
    stage_out_time_seconds: int | None = None
    requeued_tasks: bool = False


def seconds(text: str | None) -> int | None:
    """Whole seconds of a Slurm duration (``INVALID``, ``UNLIMITED``, junk -> None)."""
    value = parse_duration(text)
    return None if value is None or math.isinf(value) else int(value)


def mail_type_name(text: str | None) -> str:
    """``Reached 80% of time limit`` -> ``TIME_LIMIT_80``; unrecognised -> ``UNKNOWN``."""
    if not text:
        return UNKNOWN_MAIL_TYPE
    text = text.strip()
    if text in MAIL_TYPES:
        return MAIL_TYPES[text]
    m = _PERCENT.fullmatch(text)
    if m:
        return f"TIME_LIMIT_{int(m.group(1))}"
    return UNKNOWN_MAIL_TYPE


def time_limit_percent(mail_type: str) -> int | None:
    if mail_type == "TIME_LIMIT":
        return 100
    if mail_type.startswith("TIME_LIMIT_"):
        return int(mail_type.rsplit("_", 1)[1])
    return None


def _ids(kind: str | None, ref: str, record: str | None) -> dict[str, Any]:
    array_id, _, task = ref.partition("_")
    if not task:
        return {"job_id": int(array_id)}
    return {
        "job_id": parse_int(record),
        "array_job_id": int(array_id),
        "array_task_id": None if task == "*" else int(task),
        "array_summary": task == "*" or kind == "Array Summary",
    }


def _finish(values: dict[str, Any]) -> SubjectInfo:
    state = values.get("state")
    if state == "Mixed":
        values["state"] = None
        values["mixed"] = True
    if values.get("array_summary"):
        if values.get("exit_code_max") is not None:
            values["exit_code"] = values["exit_code_max"]
            lo = values.get("exit_code_min")
            if lo is not None and lo != values["exit_code_max"]:
                values["mixed"] = True
        if values.get("signal") is not None:
            values["signaled"] = True
    elif (
        state
        and values.get("exit_code") is None
        and values.get("mail_type_text") in ("Ended", "Failed")
    ):
        values["signaled"] = True  # slurmctld omits ExitCode when WIFEXITED is false
    return SubjectInfo(**values)


def parse_subject(subject: str | None) -> SubjectInfo:
    """Read a MailProg subject line (see the module docstring for the grammar)."""
    if not subject:
        return SubjectInfo()
    m = _SUBJECT.fullmatch(subject)
    if m:
        g = m.groupdict()
        values: dict[str, Any] = {"matched": True, **_ids(g["kind"], g["ref"], g["record"])}
        values["job_name"] = g["name"]
        values["mail_type_text"] = g["mt"]
        if g["tkind"] == "Queued":
            values["queued_time_seconds"] = seconds(g["time"])
        elif g["tkind"] == "Run":
            values["run_time_seconds"] = seconds(g["time"])
        values["stage_out_time_seconds"] = seconds(g["stime"])
        values["state"] = g["state"]
        values["exit_code"] = parse_int(g["ec"])
        if g["ecmin"] is not None:
            values["exit_code_min"] = int(g["ecmin"])
            values["exit_code_max"] = int(g["ecmax"])
        elif g["maxec"] is not None:
            values["exit_code_max"] = int(g["maxec"])
            values["mixed"] = True
        if g["maxsig"] is not None:
            values["signal"] = int(g["maxsig"])
            values["mixed"] = True
        values["requeued_tasks"] = bool(g["requeued"])
        return _finish(values)
    return _parse_subject_loosely(subject)


def _parse_subject_loosely(subject: str) -> SubjectInfo:
    head = _LOOSE_HEAD.search(subject)
    if not head:
        return SubjectInfo()
    values: dict[str, Any] = _ids(head["kind"], head["ref"], head["record"])
    rest = head["rest"] or ""
    found = list(_LOOSE_MT.finditer(rest))
    if not found:
        return _finish(values)
    mt = found[-1]
    values["job_name"] = rest[: mt.start("mt")].rstrip()
    values["mail_type_text"] = mt["mt"]
    tail = rest[mt.end("mt") :]
    t = _LOOSE_TIME.search(tail)
    if t:
        key = "queued_time_seconds" if t["tkind"] == "Queued" else "run_time_seconds"
        values[key] = seconds(t["time"])
    s = _LOOSE_STATE.search(tail)
    if s:
        values["state"] = s["state"]
    e = _LOOSE_EC.search(tail)
    if e:
        if e["ec"] is not None:
            values["exit_code"] = int(e["ec"])
        else:
            values["exit_code_min"], values["exit_code_max"] = int(e["ecmin"]), int(e["ecmax"])
    values["requeued_tasks"] = "with requeued tasks" in tail
    return _finish(values)


# --- the whole event -------------------------------------------------------------------------
