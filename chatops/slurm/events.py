"""Slurm MailProg events: from a spooled event (argv + SLURM_* environment) to a typed SlurmEvent.

Pure standard library. The event is what ``chatops.mailprog`` records::

    {"version": 1, "argv": ["-s", SUBJECT, MAIL_USER], "subject": ..., "mail_user": ...,
     "env": {"SLURM_...": ...}, "received_at": ..., "host": ...}

Slurm >= 21.08 passes the job's facts in the environment (``SLURM_JOB_MAIL_TYPE``,
``SLURM_JOB_STATE``, ``SLURM_JOB_EXIT_CODE``, ...); older Slurm passes only the subject line, so
the subject is parsed too (``chatops.slurm.subject``) and fills whatever the environment lacks.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from chatops.mailprog import split_argv  # read argv exactly as the MailProg did
from chatops.slurm.parse import parse_int
from chatops.slurm.subject import mail_type_name, parse_subject, seconds, time_limit_percent

_CONNECTOR = re.compile(r"[a-z][a-z0-9_.+-]*")


class Receiver(NamedTuple):
    """One MAIL_USER entry: ``connector`` None means the default connector / a Slurm user."""

    connector: str | None
    target: str


@dataclass(frozen=True)
class SlurmEvent:
    """One Slurm notification, from the environment where present, else from the subject."""

    job_id: int | None  # SLURM_JOB_ID: an array task's own id (21 for 14_1)
    array_job_id: int | None
    array_task_id: int | None  # None for a whole-array summary
    array_summary: bool  # "Slurm Array Summary Job_id=16_* (16)": one mail for all tasks
    job_name: str | None
    user: str | None
    uid: int | None
    cluster: str | None
    partition: str | None
    account: str | None
    nodes: str | None  # Slurm's node list as given ("node[01-04]"), None if none
    num_nodes: int | None
    mail_type: str  # BEGIN, END, FAIL, REQUEUE, INVALID_DEPEND, STAGE_OUT, TIME_LIMIT[_NN]
    mail_type_text: str | None  # as Slurm wrote it: "Reached 80% of time limit"
    time_limit_percent: int | None  # 50/80/90 for the warnings, 100 for TIME_LIMIT
    state: str | None  # COMPLETED, FAILED, TIMEOUT, CANCELLED, NODE_FAIL, RUNNING, PENDING, ...
    exit_code: int | None  # the exit status (0-255); None if unknown or killed by a signal;
    #                        for an array summary, the highest task exit code
    signal: int | None  # the signal that killed it (or the summary's MaxSignal)
    signaled: bool  # killed by a signal (even when the number is unknown)
    exit_status_raw: int | None  # SLURM_JOB_EXIT_CODE, a raw wait(2) status (768 = exit 3)
    exit_code_min: int | None  # array summaries
    exit_code_max: int | None
    mixed: bool  # an array summary whose tasks did not all succeed alike
    requeued_tasks: bool  # ", with requeued tasks"
    run_time_seconds: int | None
    queued_time_seconds: int | None
    stage_out_time_seconds: int | None
    restart_count: int | None
    work_dir: str | None
    stdout: str | None  # unexpanded, as given (custom -o only)
    stderr: str | None
    receivers: tuple[Receiver, ...]
    rejected_receivers: tuple[str, ...]  # MAIL_USER entries refused; log them with %r
    subject: str | None
    mail_user: str | None
    event_id: str | None  # chatops-mailprog's id: the same id twice is the same call
    received_at: str | None
    host: str | None
    source: str  # "env" (Slurm >= 21.08) or "subject"
    subject_matched: bool
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def display_id(self) -> str:
        """The id users see: ``9``, ``14_1``, ``16_*``."""
        if self.array_job_id is not None and (self.array_summary or self.array_task_id is not None):
            task = "*" if self.array_summary else str(self.array_task_id)
            return f"{self.array_job_id}_{task}"
        return "" if self.job_id is None else str(self.job_id)

    @property
    def finished(self) -> bool:
        """An Ended or Failed mail: the job (or the whole array) is over."""
        return self.mail_type in ("END", "FAIL")


# --- small parsers -----------------------------------------------------------------------------


def decode_wait_status(status: int) -> tuple[int | None, int | None]:
    """(exit code, signal) from a raw wait(2) status, as in ``SLURM_JOB_EXIT_CODE``.

    768 -> (3, None); 9 -> (None, 9); 139 (SIGSEGV + core) -> (None, 11). Values that cannot be a
    wait status (negative, > 16 bits such as Slurm's NO_VAL, stopped) give (None, None).
    """
    if status < 0 or status > 0xFFFF:
        return None, None
    low = status & 0x7F
    if low == 0:
        return (status >> 8) & 0xFF, None
    if low != 0x7F:
        return None, low
    return None, None


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def split_mail_user(value: str | None) -> tuple[list[Receiver], list[str]]:
    """(receivers, rejected entries) from Slurm's MAIL_USER argument.

    Comma-separated; each entry split on its FIRST colon into (connector, target), so
    ``matrix:!room:server`` -> ("matrix", "!room:server"); a bare name -> (None, name): the default
    connector, or a Slurm user name to resolve through identities. Whitespace is trimmed,
    connector names are lower-cased, empty entries dropped, duplicates collapsed (first wins).
    Entries with an empty target, a control/format character in the target, or a connector that
    is not a plain name are rejected.
    """
    receivers: list[Receiver] = []
    rejected: list[str] = []
    seen: set[Receiver] = set()
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        head, colon, tail = item.partition(":")
        connector: str | None = head.strip().lower() if colon else None
        target = tail.strip() if colon else item
        if connector == "":
            connector = None
        if (
            not target
            or _has_control(target)
            or (connector is not None and not _CONNECTOR.fullmatch(connector))
        ):
            rejected.append(item)
            continue
        receiver = Receiver(connector, target)
        if receiver not in seen:
            seen.add(receiver)
            receivers.append(receiver)
    return receivers, rejected


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value in ("", "(null)") else value


_INFERRED_STATE = {"BEGIN": "RUNNING", "INVALID_DEPEND": "PENDING"}


def parse_event(event: Mapping[str, Any]) -> SlurmEvent:
    """A SlurmEvent from one spooled (or POSTed) MailProg event.

    The environment wins where it has a value; the subject fills the rest (all of it on Slurm
    before 21.08). Never raises on odd input: unknown fields come back as None.
    """
    raw_env = event.get("env") or {}
    env = {str(k): str(v) for k, v in raw_env.items()} if isinstance(raw_env, Mapping) else {}
    argv = [str(a) for a in event.get("argv") or []]
    argv_subject, argv_user = split_argv(argv)
    subject = event["subject"] if "subject" in event else argv_subject
    mail_user = event["mail_user"] if "mail_user" in event else argv_user
    subject = None if subject is None else str(subject)
    mail_user = None if mail_user is None else str(mail_user)
    subj = parse_subject(subject)

    def env_str(*keys: str) -> str | None:
        for key in keys:
            value = _clean(env.get(key))
            if value is not None:
                return value
        return None

    def env_int(*keys: str) -> int | None:
        return parse_int(env_str(*keys))

    has_env = any(k in env for k in ("SLURM_JOB_MAIL_TYPE", "SLURM_JOB_ID", "SLURM_JOBID"))

    mail_type_text = env_str("SLURM_JOB_MAIL_TYPE") or subj.mail_type_text
    mail_type = mail_type_name(mail_type_text)

    job_id = env_int("SLURM_JOB_ID", "SLURM_JOBID")
    if job_id is None:
        job_id = subj.job_id
    array_job_id = env_int("SLURM_ARRAY_JOB_ID")
    if array_job_id is None:
        array_job_id = subj.array_job_id
    # SLURM_JOB_EXIT_CODE_MIN and SLURM_JOB_TERM_SIGNAL_MAX are only set for array summaries.
    array_summary = subj.array_summary or (
        not subj.matched
        and array_job_id is not None
        and ("SLURM_JOB_EXIT_CODE_MIN" in env or "SLURM_JOB_TERM_SIGNAL_MAX" in env)
    )
    array_task_id = None
    if not array_summary:
        array_task_id = env_int("SLURM_ARRAY_TASK_ID")
        if array_task_id is None:
            array_task_id = subj.array_task_id

    exit_raw = env_int("SLURM_JOB_EXIT_CODE")
    exit_code: int | None
    signal: int | None
    if exit_raw is not None:
        exit_code, signal = decode_wait_status(exit_raw)
    elif env_str("SLURM_JOB_EXIT_CODE2"):
        code, _, sig = (env_str("SLURM_JOB_EXIT_CODE2") or "").partition(":")
        signal = parse_int(sig) or None
        exit_code = None if signal else parse_int(code)
    else:
        exit_code, signal = subj.exit_code, subj.signal
    signaled = signal is not None or (exit_raw is None and subj.signaled)

    exit_min = env_int("SLURM_JOB_EXIT_CODE_MIN")
    exit_max = env_int("SLURM_JOB_EXIT_CODE_MAX")
    mixed = subj.mixed
    if array_summary:
        if exit_min is None:
            exit_min = subj.exit_code_min
        if exit_max is None:
            exit_max = subj.exit_code_max
        term_max = env_int("SLURM_JOB_TERM_SIGNAL_MAX")
        signal = term_max if term_max is not None else subj.signal
        signaled = signal is not None
        exit_code = None if signaled else exit_max
        if signaled or (exit_min is not None and exit_max is not None and exit_min != exit_max):
            mixed = True
    else:
        exit_min = exit_max = None  # a single job's SLURM_JOB_EXIT_CODE_MAX is its exit code

    state = env_str("SLURM_JOB_STATE") or subj.state
    if state is None and not mixed:
        state = _INFERRED_STATE.get(mail_type)
        if mail_type.startswith("TIME_LIMIT"):
            state = "RUNNING"  # the warnings, and TIME_LIMIT itself, come before the kill

    receivers, rejected = split_mail_user(mail_user)
    if not receivers and not rejected and env_str("SLURM_JOB_USER"):
        receivers = [Receiver(None, env_str("SLURM_JOB_USER") or "")]

    def env_seconds(key: str, fallback: int | None) -> int | None:
        value = seconds(env.get(key))
        return fallback if value is None else value

    return SlurmEvent(
        job_id=job_id,
        array_job_id=array_job_id,
        array_task_id=array_task_id,
        array_summary=array_summary,
        job_name=env.get("SLURM_JOB_NAME") if "SLURM_JOB_NAME" in env else subj.job_name,
        user=env_str("SLURM_JOB_USER"),
        uid=env_int("SLURM_JOB_UID"),
        cluster=env_str("SLURM_CLUSTER_NAME"),
        partition=env_str("SLURM_JOB_PARTITION"),
        account=env_str("SLURM_JOB_ACCOUNT"),
        nodes=env_str("SLURM_JOB_NODELIST"),
        num_nodes=env_int("SLURM_JOB_NUM_NODES"),
        mail_type=mail_type,
        mail_type_text=mail_type_text,
        time_limit_percent=time_limit_percent(mail_type),
        state=state,
        exit_code=exit_code,
        signal=signal,
        signaled=signaled,
        exit_status_raw=exit_raw,
        exit_code_min=exit_min,
        exit_code_max=exit_max,
        mixed=mixed,
        requeued_tasks=subj.requeued_tasks,
        run_time_seconds=env_seconds("SLURM_JOB_RUN_TIME", subj.run_time_seconds),
        queued_time_seconds=env_seconds("SLURM_JOB_QUEUED_TIME", subj.queued_time_seconds),
        stage_out_time_seconds=env_seconds("SLURM_JOB_STAGE_OUT_TIME", subj.stage_out_time_seconds),
        restart_count=env_int("SLURM_JOB_RESTART_COUNT"),
        work_dir=env_str("SLURM_JOB_WORK_DIR"),
        stdout=env_str("SLURM_JOB_STDOUT"),
        stderr=env_str("SLURM_JOB_STDERR"),
        receivers=tuple(receivers),
        rejected_receivers=tuple(rejected),
        subject=subject,
        mail_user=mail_user,
        event_id=_clean(str(event["id"])) if event.get("id") else None,
        received_at=_clean(str(event["received_at"])) if event.get("received_at") else None,
        host=_clean(str(event["host"])) if event.get("host") else None,
        source="env" if has_env else "subject",
        subject_matched=subj.matched,
        env=env,
    )
