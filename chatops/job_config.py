"""The job-config model: ``raw_config`` in ebmbot/bennettbot's format, validated into typed specs.

``build_config`` never mutates its input and reports every error at once, each naming the
namespace, the job or command, and the key. Loading a config file runs that module and nothing else.
"""

from __future__ import annotations

import re
import runpy
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chatops import submit_as
from chatops.calc.config import (
    NAMESPACE as CALC_NAMESPACE,
)
from chatops.calc.config import (
    CalcSettings,
    RunnerSpec,
    build_calc_settings,
    build_runners,
)
from chatops.cluster_config import (
    ClusterSpec,
    SlurmSpec,
    build_clusters,
    build_slurm,
    check_cluster_name,
)
from chatops.config_sections import misspelt_sections
from chatops.github_rules import GithubRule, build_rules, default_rules
from chatops.monitor_config import MonitorSpec, build_monitors
from chatops.notify.check import check_notifications
from chatops.params import ParamType, build_param_types
from chatops.schedule_config import ScheduleSpec, build_schedules
from chatops.telemetry_config import TelemetrySpec, build_telemetry
from chatops.user_ids import channel_problem, user_id_problem

ACTIONS = ("schedule_job", "cancel_job", "schedule_suppression", "cancel_suppression")
REPORT_FORMATS = ("text", "blocks", "code", "file")
# Built-in command words, today's and those planned (calculations, schedules, the cluster
# monitor, telemetry, users and admins): a namespace of that name would shadow them.
RESERVED_NAMESPACES = (
    "help", "status", "cancel", "logs", "notify", "run", "users", "user", "cluster", "schedules",
    "telemetry", "link", "unlink", "bind", "approve", "block", "unblock", "limit", "quota",
    "profile", "start", "stop", "upd", "list", "search", "alter_limit", "mailuser", "admin",
    "config", "pause", "resume",
)
DEFAULT_TIMEOUT = 3600.0

NAMESPACE_KEYS = {
    "jobs", "slack", "description", "restricted", "fabfile", "default_channel", "allowed_users",
    "github", "github_legacy_sha1", "cluster", "schedules",
}
JOB_KEYS = {
    "run_args_template", "report_stdout", "report_format", "report_success",
    "timeout", "concurrency", "env", "cluster", "slurm", "params",
}
COMMAND_KEYS = {"command", "help", "action", "type", "job_type", "delay_seconds"}
_PARAM = re.compile(r"^\[(\w+)\]$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """Every problem found in a config, one line each."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass(frozen=True)
class Word:
    text: str
    is_param: bool

    def __str__(self) -> str:
        return f"[{self.text}]" if self.is_param else self.text


@dataclass(frozen=True)
class JobSpec:
    namespace: str
    name: str
    run_args_template: str
    report_stdout: bool = False
    report_format: str = "text"
    report_success: bool = True
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int | None = 1  # None: no per-type limit (the default of Slurm batch types)
    env: tuple[str, ...] = ()
    cluster: str | None = None  # runs over SSH on this cluster (its own, or its namespace's)
    slurm: SlurmSpec | None = None  # submitted with sbatch instead of run (needs a cluster)
    param_types: Mapping[str, ParamType] = field(default_factory=dict)  # checked before queueing

    @property
    def type(self) -> str:
        """The job type, as stored in the queue: ``<namespace>_<job>``."""
        return f"{self.namespace}_{self.name}"

    @property
    def params(self) -> set[str]:
        return template_fields(self.run_args_template)


@dataclass(frozen=True)
class CommandSpec:
    namespace: str
    pattern: str
    help: str
    action: str
    job_type: str  # the job's name within the namespace
    delay_seconds: float = 0
    words: tuple[Word, ...] = ()

    @property
    def params(self) -> list[str]:
        return [w.text for w in self.words if w.is_param]

    @property
    def literal_count(self) -> int:
        return sum(not w.is_param for w in self.words)


@dataclass(frozen=True)
class NamespaceSpec:
    name: str
    description: str = ""
    restricted: bool = False
    default_channel: str | None = None
    fabfile: str | None = None
    allowed_users: tuple[str, ...] = ()
    jobs: Mapping[str, JobSpec] = field(default_factory=dict)
    commands: tuple[CommandSpec, ...] = ()
    github: tuple[GithubRule, ...] = ()  # webhook events that schedule jobs (github_rules.py)
    github_legacy_sha1: bool = False  # accept X-Hub-Signature (SHA-1) as well as SHA-256
    cluster: str | None = None  # the default cluster of its jobs
    schedules: tuple[ScheduleSpec, ...] = ()  # jobs run on a cron or every N (schedule_config)


@dataclass(frozen=True)
class Config:
    namespaces: Mapping[str, NamespaceSpec]
    clusters: Mapping[str, ClusterSpec] = field(default_factory=dict)
    notifications: Mapping[str, Any] = field(default_factory=dict)  # bot/notify/config.py
    warnings: tuple[str, ...] = ()  # accepted, but probably not what was meant
    admins: frozenset[str] = frozenset()  # 'platform:id' of the people who may do anything
    admin_channel: str | None = None  # 'platform:channel': where the service's alarms go
    telemetry: TelemetrySpec | None = None  # the daemons' broker, for `telemetry` in chat
    monitors: Mapping[str, MonitorSpec] = field(default_factory=dict)  # by cluster name
    runners: Mapping[str, RunnerSpec] = field(default_factory=dict)  # by job type (calc/config)
    calc: CalcSettings = field(default_factory=CalcSettings)
    calc_jobs: Mapping[str, JobSpec] = field(default_factory=dict)  # a runner's job, by type

    def is_admin(self, identity: str) -> bool:
        return identity in self.admins

    @property
    def audit_channel(self) -> str | None:
        return self.calc.audit_channel or self.admin_channel

    def job(self, job_type: str) -> JobSpec | None:
        namespace, _, name = job_type.partition("_")
        if namespace == CALC_NAMESPACE:
            return self.calc_jobs.get(job_type)
        ns = self.namespaces.get(namespace)
        return ns.jobs.get(name) if ns else None

    def schedules(self) -> list[ScheduleSpec]:
        return [s for ns in self.namespaces.values() for s in ns.schedules]


def template_fields(template: str) -> set[str]:
    """The ``{names}`` a run_args_template fills in."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError:
        return set()


def split_pattern(pattern: str) -> tuple[Word, ...]:
    words = []
    for token in pattern.split():
        m = _PARAM.match(token)
        words.append(Word(m.group(1), True) if m else Word(token, False))
    return tuple(words)


def patterns_overlap(a: tuple[Word, ...], b: tuple[Word, ...]) -> bool:
    """Whether some text could match both patterns (a last parameter takes the rest)."""
    if not a or not b:
        return not a and not b
    if len(a) == 1 and a[0].is_param or len(b) == 1 and b[0].is_param:
        return True  # a last parameter swallows whatever the other pattern still needs
    head_a, head_b = a[0], b[0]
    if not head_a.is_param and not head_b.is_param and head_a.text.lower() != head_b.text.lower():
        return False
    return patterns_overlap(a[1:], b[1:])


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{where}: {message}")

    def unknown_keys(self, where: str, item: Mapping[str, Any], allowed: set[str]) -> None:
        for key in sorted(set(item) - allowed):
            self.error(where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")

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


def build_config(raw_config: Mapping[str, Any], clusters: Any = None, *, admins: Any = None,
                 admin_channel: Any = None, telemetry: Any = None, monitors: Any = None,
                 runners: Any = None, calculations: Any = None) -> Config:
    """Validate ``raw_config`` (and the other sections of job_configs.py: ``clusters``,
    ``admins``, ``admin_channel``, ``telemetry``, ``monitors``, ``runners``, ``calculations``)
    into the typed model; ConfigError lists every problem."""
    check = _Checker()
    cluster_specs = build_clusters(check.error, clusters)
    monitor_specs = build_monitors(check.error, monitors, cluster_specs)
    admin_ids = _user_ids(check, "admins", admins)
    telemetry_spec = build_telemetry(check.error, telemetry, cluster_specs)
    for name, monitor in monitor_specs.items():
        if monitor.source == "kafka" and not (telemetry_spec and telemetry_spec.fed(name)):
            check.error(f"monitor {name!r}", "'source' is 'kafka', but no `telemetry` 'feeds' "
                        f"entry maps the daemons' cluster to {name!r}")
    if admin_channel is not None:
        problem = channel_problem(admin_channel)
        if problem:
            check.error("admin_channel", problem)
    namespaces: dict[str, NamespaceSpec] = {}
    if not isinstance(raw_config, Mapping):
        kind = type(raw_config).__name__
        raise ConfigError([f"raw_config must be a dict of namespaces, not {kind}"])
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
        namespaces[ns_name] = _build_namespace(check, ns_name, raw_ns, cluster_specs)
    runner_specs = build_runners(check.error, runners, cluster_specs, set(raw_config))
    calc = build_calc_settings(check.error, calculations)
    submit_as.check_namespaces(check.error, namespaces, cluster_specs)
    if check.errors:
        raise ConfigError(check.errors)
    return Config(namespaces=namespaces, clusters=cluster_specs, admins=frozenset(admin_ids),
                  admin_channel=admin_channel, telemetry=telemetry_spec,
                  monitors=monitor_specs, runners=runner_specs, calc=calc,
                  calc_jobs={t: runner_job(r) for t, r in runner_specs.items()},
                  warnings=tuple(check.warnings))


def runner_job(runner: RunnerSpec) -> JobSpec:
    """A runner as a job: a calculation is a Slurm batch job of the ``run`` namespace."""
    return JobSpec(namespace=CALC_NAMESPACE, name=f"{runner.cluster}.{runner.name}",
                   run_args_template=runner.program, report_stdout=False,
                   timeout=runner.timeout, concurrency=runner.concurrency,
                   cluster=runner.cluster, slurm=runner.slurm)


def _user_ids(check: _Checker, where: str, raw: Any) -> tuple[str, ...]:
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


def _build_namespace(check: _Checker, ns: str, raw: Mapping[str, Any],
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
    allowed_users = _user_ids(check, f"{where}, allowed_users", raw.get("allowed_users"))
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


def _build_job(check: _Checker, where: str, ns: str, name: str,
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
    if report_format not in REPORT_FORMATS:
        check.error(where, f"'report_format' is {report_format!r}; use one of "
                    f"{', '.join(REPORT_FORMATS)}")
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


def _build_command(check: _Checker, where: str, ns: str, raw: Mapping[str, Any],
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
    if action not in ACTIONS:
        check.error(where, f"'action' is {action!r}; use one of {', '.join(ACTIONS)}")
        ok = False
    job_type = raw.get("job_type")
    if not isinstance(job_type, str) or job_type not in raw_jobs:
        known = ", ".join(sorted(raw_jobs)) or "none defined"
        check.error(where, f"'job_type' {job_type!r} is not a job of namespace {ns!r} ({known})")
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


def _check_patterns(check: _Checker, where: str, commands: list[CommandSpec]) -> None:
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


def load_config(path: str | Path) -> Config:
    """Run the config module at ``path`` and validate its ``raw_config``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"{path}: no such config file (set CHATOPS_CONFIG or pass a path)"])
    try:
        module = runpy.run_path(str(path), run_name="job_configs")
    except Exception as exc:  # the file is the admin's Python: report, don't crash
        raise ConfigError([f"{path}: cannot be loaded: {type(exc).__name__}: {exc}"]) from exc
    if "raw_config" not in module:
        raise ConfigError([f"{path}: defines no 'raw_config' dict"])
    # Every problem at once: the jobs', clusters', monitors'..., then the notification settings'.
    errors = check_notifications(module.get("notifications"))
    try:
        config = build_config(module["raw_config"], module.get("clusters"),
                              admins=module.get("admins"),
                              admin_channel=module.get("admin_channel"),
                              telemetry=module.get("telemetry"), monitors=module.get("monitors"),
                              runners=module.get("runners"),
                              calculations=module.get("calculations"))
    except ConfigError as exc:
        raise ConfigError([*exc.errors, *errors]) from exc
    if errors:
        raise ConfigError(errors)
    return replace(config, notifications=dict(module.get("notifications") or {}),
                   warnings=(*config.warnings, *misspelt_sections(module)))
