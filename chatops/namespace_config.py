"""The namespaces of ``raw_config``: their jobs, chat commands, webhook rules and schedules.

Each problem goes to the ``Checker`` and names the namespace, the job or command, and the key;
``config_loader.build_config`` gathers them with the other sections' problems.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from chatops.cluster_config import ClusterSpec, build_slurm, check_cluster_name
from chatops.config_checks import job_type_problem, one_of, unknown_keys
from chatops.github_rules import build_rules, default_rules
from chatops.job_config import (
    DEFAULT_TIMEOUT,
    CommandSpec,
    JobSpec,
    NamespaceSpec,
    patterns_overlap,
    split_pattern,
    template_fields,
)
from chatops.params import build_param_types
from chatops.schedule_config import build_schedules
from chatops.user_ids import user_id_problem

ACTIONS = ("schedule_job", "cancel_job", "schedule_suppression", "cancel_suppression")
REPORT_FORMATS = ("text", "blocks", "code", "file")

# Built-in command words, today's and those planned (calculations, schedules, the cluster
# monitor, telemetry, users and admins): a namespace of that name would shadow them.
RESERVED_NAMESPACES = (
    "help", "status", "cancel", "logs", "notify", "run", "users", "user", "cluster", "schedules",
    "telemetry", "link", "unlink", "bind", "approve", "block", "unblock", "limit", "quota",
    "profile", "start", "stop", "upd", "list", "search", "alter_limit", "mailuser", "admin",
    "config", "pause", "resume", "calc", "calcs",
)

NAMESPACE_KEYS = {
    "jobs", "slack", "description", "restricted", "fabfile", "default_channel", "allowed_users",
    "github", "github_legacy_sha1", "cluster", "schedules",
}
JOB_KEYS = {
    "run_args_template", "report_stdout", "report_format", "report_success",
    "timeout", "concurrency", "env", "cluster", "slurm", "params",
}
COMMAND_KEYS = {"command", "help", "action", "type", "job_type", "delay_seconds"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Checker:
    """Gathers the errors and warnings of a whole config."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{where}: {message}")

    def unknown_keys(self, where: str, item: Mapping[str, Any], allowed: set[str]) -> None:
        unknown_keys(self.error, where, item, allowed)

    def typed(self, where: str, item: Mapping[str, Any], key: str, kind: type | tuple,
              default: Any) -> Any:
        value = item.get(key, default)
        if value is default:
            return default
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            self.error(where, f"{key!r} must be a number, not {value!r}")
            return default
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            self.error(where, f"{key!r} must be {names}, not {type(value).__name__} {value!r}")
            return default
        return value


def build_namespaces(check: Checker, raw_config: Mapping[str, Any],
                     clusters: Mapping[str, ClusterSpec]) -> dict[str, NamespaceSpec]:
    """Every well-named namespace of ``raw_config``, built; the others are errors."""
    namespaces: dict[str, NamespaceSpec] = {}
    for ns_name, raw_ns in raw_config.items():
        where = f"namespace {ns_name!r}"
        if not isinstance(ns_name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", ns_name):
            check.error(where, "a namespace name is letters, digits and '-' only "
                        "(no '_', no spaces)")
            continue
        if ns_name.lower() in RESERVED_NAMESPACES:
            check.error(where, f"{ns_name!r} is a built-in command and cannot name a namespace")
            continue
        if not isinstance(raw_ns, Mapping):
            check.error(where, f"must be a dict, not {type(raw_ns).__name__}")
            continue
        namespaces[ns_name] = _build_namespace(check, ns_name, raw_ns, clusters)
    return namespaces


def user_ids(check: Checker, where: str, raw: Any) -> tuple[str, ...]:
    """A list of people as 'platform:id'; every entry that is not one is an error."""
    if raw is None:
        return ()
    if not isinstance(raw, (list, tuple)):
        check.error(where, f"must be a list of 'platform:id' strings, not {type(raw).__name__}")
        return ()
    good = []
    for value in raw:
        problem = user_id_problem(value)
        if problem:
            check.error(where, problem)
        else:
            good.append(value)
    return tuple(good)


def _build_namespace(check: Checker, ns: str, raw: Mapping[str, Any],
                     clusters: Mapping[str, ClusterSpec] | None = None) -> NamespaceSpec:
    where = f"namespace {ns!r}"
    check.unknown_keys(where, raw, NAMESPACE_KEYS)
    ns_cluster = check_cluster_name(check.error, where, raw.get("cluster"),
                                    {} if clusters is None else clusters)
    jobs: dict[str, JobSpec] = {}
    raw_jobs = check.typed(where, raw, "jobs", Mapping, {})
    for job_name, raw_job in raw_jobs.items():
        job_where = f"{where}, job {job_name!r}"
        if not isinstance(raw_job, Mapping):
            check.error(job_where, f"must be a dict, not {type(raw_job).__name__}")
            continue
        job = _build_job(check, job_where, ns, job_name, raw_job, clusters, ns_cluster)
        if job:
            jobs[job_name] = job
    commands = []
    raw_commands = check.typed(where, raw, "slack", list, [])
    for index, raw_command in enumerate(raw_commands):
        label = raw_command.get("command") if isinstance(raw_command, Mapping) else index
        command_where = f"{where}, command {label!r}"
        if not isinstance(raw_command, Mapping):
            check.error(command_where, f"must be a dict, not {type(raw_command).__name__}")
            continue
        command = _build_command(check, command_where, ns, raw_command, raw_jobs)
        if command:
            commands.append(command)
    _check_patterns(check, where, commands)
    allowed_users = user_ids(check, f"{where}, allowed_users", raw.get("allowed_users"))
    if "github" in raw:
        github = build_rules(check.error, where, raw["github"], raw_jobs)
    else:
        github = default_rules(raw_jobs)
    schedules = build_schedules(check.error, ns, raw.get("schedules"), raw_jobs,
                                raw.get("default_channel"), template_fields)
    return NamespaceSpec(
        name=ns,
        description=check.typed(where, raw, "description", str, ""),
        restricted=check.typed(where, raw, "restricted", bool, False),
        default_channel=check.typed(where, raw, "default_channel", str, None),
        fabfile=check.typed(where, raw, "fabfile", str, None),
        allowed_users=tuple(allowed_users),
        jobs=jobs,
        commands=tuple(commands),
        github=github,
        github_legacy_sha1=check.typed(where, raw, "github_legacy_sha1", bool, False),
        cluster=ns_cluster,
        schedules=schedules,
    )


def _build_job(check: Checker, where: str, ns: str, name: str,
               raw: Mapping[str, Any], clusters: Mapping[str, ClusterSpec] | None = None,
               ns_cluster: str | None = None) -> JobSpec | None:
    check.unknown_keys(where, raw, JOB_KEYS)
    cluster = check_cluster_name(check.error, where, raw.get("cluster"),
                                 {} if clusters is None else clusters)
    cluster = cluster or ns_cluster
    slurm = build_slurm(check.error, where, raw["slurm"]) if "slurm" in raw else None
    if slurm is not None and cluster is None and "cluster" not in raw:
        check.error(where, "a job with 'slurm' needs a 'cluster' (on the job or its namespace)")
    template = raw.get("run_args_template")
    if not isinstance(template, str) or not template.strip():
        check.error(where, "'run_args_template' is required (the command line to run)")
        return None
    try:
        list(string.Formatter().parse(template))
    except ValueError as exc:
        check.error(where, f"'run_args_template' is not a valid template: {exc}")
    report_format = raw.get("report_format", "text")
    if not one_of(check.error, where, "report_format", report_format, REPORT_FORMATS,
                  f"one of {', '.join(REPORT_FORMATS)}"):
        report_format = "text"
    timeout = check.typed(where, raw, "timeout", (int, float), DEFAULT_TIMEOUT)
    if timeout <= 0:
        check.error(where, f"'timeout' must be a positive number of seconds, not {timeout!r}")
    # Slurm is the queue of a batch type: by default as many run at once as Slurm lets run.
    default_limit = None if slurm is not None else 1
    concurrency = (check.typed(where, raw, "concurrency", int, default_limit)
                   if raw.get("concurrency", default_limit) is not None else None)
    if concurrency is not None and concurrency < 1:
        check.error(where, f"'concurrency' must be at least 1 (or None for no limit), not "
                    f"{concurrency!r}")
    env = check.typed(where, raw, "env", (list, tuple), ())
    for env_name in env:
        if not isinstance(env_name, str) or not _ENV_NAME.match(env_name):
            check.error(where, f"'env' lists variable names; {env_name!r} is not one")
    param_types = (build_param_types(check.error, where, raw["params"], template_fields(template))
                   if "params" in raw else {})
    return JobSpec(
        namespace=ns,
        name=name,
        run_args_template=template,
        report_stdout=check.typed(where, raw, "report_stdout", bool, False),
        report_format=report_format,
        report_success=check.typed(where, raw, "report_success", bool, True),
        timeout=float(timeout),
        concurrency=concurrency,
        env=tuple(e for e in env if isinstance(e, str)),
        cluster=cluster,
        slurm=slurm,
        param_types=param_types,
    )


def _build_command(check: Checker, where: str, ns: str, raw: Mapping[str, Any],
                   raw_jobs: Mapping[str, Any]) -> CommandSpec | None:
    check.unknown_keys(where, raw, COMMAND_KEYS)
    if "action" in raw and "type" in raw and raw["action"] != raw["type"]:
        check.error(where, "'type' is the old name of 'action'; give only one of them")
    action = raw.get("action", raw.get("type"))
    pattern = raw.get("command")
    ok = True
    if not isinstance(pattern, str) or not pattern.split():
        check.error(where, "'command' is required (the words a user types)")
        ok = False
    help_text = raw.get("help")
    if isinstance(help_text, (tuple, list)) and help_text and all(
            isinstance(part, str) for part in help_text):
        # ("one", "two") is an easy slip for ("one" "two"): the help is there, in pieces.
        check.warn(where, f"'help' is a {type(help_text).__name__} of strings (a comma between "
                   "two strings?); its parts are joined with spaces")
        help_text = " ".join(part.strip() for part in help_text)
    elif help_text is None:
        check.error(where, "'help' is required (one line shown by `help`)")
    elif not isinstance(help_text, str):
        check.error(where, f"'help' must be a string (one line shown by `help`), not "
                    f"{type(help_text).__name__} {help_text!r}")
    if not one_of(check.error, where, "action", action, ACTIONS, f"one of {', '.join(ACTIONS)}"):
        ok = False
    job_type = raw.get("job_type")
    problem = job_type_problem(job_type, raw_jobs, f"namespace {ns!r}")
    if problem:
        check.error(where, problem)
        ok = False
    delay = check.typed(where, raw, "delay_seconds", (int, float), 0)
    if delay < 0:
        check.error(where, f"'delay_seconds' must not be negative, not {delay!r}")
    if not ok:
        return None
    words = split_pattern(pattern)
    params = [w.text for w in words if w.is_param]
    if len(set(params)) != len(params):
        check.error(where, f"a parameter appears twice in {pattern!r}")
    if action == "schedule_job" and isinstance(raw_jobs[job_type], Mapping):
        template = raw_jobs[job_type].get("run_args_template")
        wanted = template_fields(template) if isinstance(template, str) else set()
        if set(params) != wanted:
            check.error(where, f"parameters {sorted(params)} do not match the template "
                        f"fields {sorted(wanted)} of job {job_type!r}")
    if action == "schedule_suppression" and set(params) != {"start_at", "end_at"}:
        check.error(where, "a schedule_suppression command takes [start_at] and [end_at]")
    if action in ("cancel_job", "cancel_suppression") and params:
        check.error(where, f"a {action} command takes no parameters")
    return CommandSpec(
        namespace=ns, pattern=pattern, help=help_text if isinstance(help_text, str) else "",
        action=action,
        job_type=job_type, delay_seconds=float(delay), words=words,
    )


def _check_patterns(check: Checker, where: str, commands: list[CommandSpec]) -> None:
    for i, first in enumerate(commands):
        for second in commands[i + 1:]:
            shape_a = [w.is_param or w.text.lower() for w in first.words]
            shape_b = [w.is_param or w.text.lower() for w in second.words]
            if shape_a == shape_b:
                check.error(where, f"commands {first.pattern!r} and {second.pattern!r} are the "
                            "same pattern")
            elif (first.literal_count == second.literal_count
                  and patterns_overlap(first.words, second.words)):
                check.error(where, f"commands {first.pattern!r} and {second.pattern!r} can match "
                            "the same text: one shadows the other; make their words differ")
