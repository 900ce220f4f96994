"""The words users read: help, status, and answers to commands. Platform-neutral (markdown-ish
with `code` spans; each platform converts what it must)."""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from chatops.job_config import CommandSpec, Config, NamespaceSpec

BUILTINS = ("`status`, `cancel <job id>`, `logs <job id> [stderr]`, `help [namespace]`, "
            "`notify me`, `schedules`, `pause schedule <namespace> <name>`, "
            "`resume schedule <namespace> <name>`, `cluster status [name]`, "
            "`cluster history <name> [24h|7d]`")


def plural(count: int, word: str, plural_word: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural_word or word + 's'}"


def clock(ts: float, date: bool = False) -> str:
    """A time as users read it: UTC, with the date when it is not today (or ``date``)."""
    moment = datetime.fromtimestamp(ts, UTC)
    if not date and moment.date() == datetime.now(UTC).date():
        return moment.strftime("%H:%M:%S UTC")
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def when(ts: float, now: float | None = None) -> str:
    """A moment with how long ago (or how soon) it is: ``2026-11-24 10:00:01 UTC (3 minutes
    ago)``."""
    now = time.time() if now is None else now
    relative = f"{ago(now - ts)} ago" if ts <= now else f"in {ago(ts - now)}"
    return f"{clock(ts, date=True)} ({relative})"


# States in which Slurm, not the job, ended it: their exit code 0 means nothing.
SLURM_STOPPED = {"TIMEOUT", "CANCELLED", "NODE_FAIL", "PREEMPTED", "DEADLINE", "BOOT_FAIL",
                 "REVOKED"}


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def exit_status(code: int | None) -> str:
    """An exit code as users read it: ``0``, ``3``, or ``stopped (SIGTERM)`` for a signal."""
    if code is None:
        return ""
    if code >= 0:
        return str(code)
    return f"stopped ({signal_name(-code)})"


def slurm_ending(state: str | None, exit_code: int | None, signal_number: int | None,
                 started: bool | None = None) -> str:
    """How a Slurm job ended, after its state: ``exit code 3``, ``signal 15 (SIGTERM)``, or, for
    a job Slurm stopped without a recorded signal, ``never started`` / ``no signal recorded``
    (never "exit code 0": the job did not exit); "" when nothing is known."""
    if signal_number:
        return f"signal {signal_number} ({signal_name(signal_number)})"
    if state in SLURM_STOPPED and not exit_code:
        return "never started" if started is False else "no signal recorded"
    return "" if exit_code is None else f"exit code {exit_code}"


def acct_ending(acct) -> str:
    """:func:`slurm_ending` of a job's sacct records (a ``chatops.slurm.acct.AcctJob``: the
    signal of a TIMEOUT or a scancel is on its batch step)."""
    job = acct.job
    return (slurm_ending(job.state, job.exit_code, acct.signal, acct.started)
            or "exit code unknown")


def duration(seconds: float | None) -> str:
    """A length of time as Slurm writes it: ``[D-]H:MM:SS``."""
    if seconds is None or seconds == math.inf:
        return "unlimited" if seconds == math.inf else "unknown"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600}:{rest // 60 % 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def size(value: float | None) -> str:
    """Bytes, in the largest binary unit that reads well."""
    if value is None:
        return "unknown"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value / 2**10:.0f} KiB"


def percent(value: float | None) -> str:
    """A ratio (0.42) as users read it (42 %)."""
    return "unknown" if value is None else f"{value * 100:.0f} %"


def ago(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return plural(seconds, "second")
    if seconds < 7200:
        return plural(seconds // 60, "minute")
    return plural(seconds // 3600, "hour")


def general_help(config: Config) -> str:
    lines = ["Namespaces (`<namespace> help` lists their commands):"]
    for ns in config.namespaces.values():
        lock = " 🔒" if ns.restricted or ns.allowed_users else ""
        description = f": {ns.description}" if ns.description else ""
        lines.append(f"• `{ns.name}`{lock}{description}")
    if not config.namespaces:
        lines.append("• (none configured yet: see job_configs.py)")
    lines.append(f"Built-in commands: {BUILTINS}.")
    if config.runners:
        lines.append("Calculations: send an input file, with the caption `run [runner] "
                     "[on cluster] [args…]` if it needs one; `quota`, `calcs`, `calc <id>`. "
                     "Runners:")
        for runner in config.runners.values():
            lock = " 🔒" if runner.allowed_users or runner.namespaces else ""
            what = f": {runner.description}" if runner.description else ""
            lines.append(f"• `{runner.name}` on {runner.cluster}{lock} "
                         f"({', '.join(runner.extensions) or 'named in the caption'}){what}")
    if config.telemetry:
        lines.append("Admins: `telemetry dump on|off <cluster> [node]`, "
                     "`telemetry exit <cluster> <node>` (steer the telemetry daemons).")
    return "\n".join(lines)


def namespace_help(ns: NamespaceSpec) -> str:
    head = f"Commands in `{ns.name}`" + (f" — {ns.description}" if ns.description else "") + ":"
    lines = [head]
    for command in ns.commands:
        lines.append(f"• `{ns.name} {command.pattern}`: {command.help}")
    if not ns.commands:
        lines.append("• (no commands)")
    return "\n".join(lines)


def not_understood(text: str, config: Config, namespace: str | None, reason: str = "",
                   suggestion: str | None = None) -> str:
    """``suggestion``: the command the text most looks like (its pattern, with the namespace)."""
    shown = text if len(text) <= 200 else text[:200] + "…"
    head = f"Sorry, I didn't understand `{shown}`."
    if reason:
        head += f" {reason[0].upper()}{reason[1:]}."
    if suggestion:
        where = f"`{namespace} help`" if namespace else "`help`"
        return f"{head} Did you mean `{suggestion}`? ({where} lists the commands.)"
    if namespace:
        return f"{head}\n{namespace_help(config.namespaces[namespace])}"
    return f"{head}\n{general_help(config)}"


def missing_parameters(typed: str, command: CommandSpec, missing: Sequence[str]) -> str:
    names = " and ".join(f"[{name}]" for name in missing)
    usage = f"{command.namespace} {command.pattern}"
    about = f" ({command.help})" if command.help else ""
    return f"`{typed}` needs {names}: use `{usage}`{about}."


def held_until(job_type: str, start: float, suppressions: Sequence) -> float | None:
    """When the suppressions of ``job_type`` let a job due at ``start`` run (None: not held)."""
    held = None
    moved = True
    while moved:  # windows may follow one another
        moved = False
        for s in suppressions:
            if s.job_type == job_type and s.start_at <= start < s.end_at:
                start = held = s.end_at
                moved = True
    return held


NO_DISPATCHER = ("No dispatcher is running: queued jobs wait, and running ones are neither "
                 "tracked nor stopped until one starts (`chatops run` or `chatops dispatcher`).")


def status(running: Sequence, queued: Sequence, suppressions: Sequence,
           now: float | None = None, slurm: Mapping[int, tuple[int, str]] | None = None,
           dispatcher: bool = True) -> str:
    """``slurm``: job id -> (Slurm job id, cluster) of the running jobs submitted to Slurm;
    ``dispatcher``: whether a dispatcher is running (else nothing runs: say so)."""
    now = time.time() if now is None else now
    if not running and not queued and not suppressions:
        return "Nothing is running or scheduled, and no jobs are suppressed."
    lines = [] if dispatcher else [NO_DISPATCHER]
    if running:
        lines.append(f"Running: {plural(len(running), 'job')}" if dispatcher else
                     f"Started before the last dispatcher stopped: {plural(len(running), 'job')}")
        for job in running:
            who = f" for {job.requested_by}" if job.requested_by else ""
            where = ""
            if slurm and job.id in slurm:
                where = " as Slurm job {} on cluster {}".format(*slurm[job.id])
            lines.append(f"• job {job.id} `{job.job_type}` started {clock(job.started_at)} "
                         f"({ago(now - job.started_at)} ago){who}{where}")
    else:
        lines.append("Running: nothing")
    if queued:
        lines.append(f"Scheduled: {plural(len(queued), 'job')}")
        for job in queued:
            due = max(now, job.start_after)
            held = held_until(job.job_type, due, suppressions)
            if held is not None:
                starts = f"is held until {clock(held)} (`{job.job_type}` is suppressed)"
            elif job.start_after <= now:
                starts = ("starts as soon as possible" if dispatcher
                          else "starts once a dispatcher runs")
            else:
                starts = f"starts {clock(job.start_after)}"
            lines.append(f"• job {job.id} `{job.job_type}` {starts}")
    else:
        lines.append("Scheduled: nothing")
    if suppressions:
        lines.append(f"Suppressed: {plural(len(suppressions), 'window')}")
        for s in suppressions:
            lines.append(f"• `{s.job_type}` from {clock(s.start_at)} to {clock(s.end_at)}")
    return "\n".join(lines)
