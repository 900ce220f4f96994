"""``runners`` and ``calculations`` of job_configs.py, validated.

``runners = {cluster: {runner name: {...}}}``: how a file sent from chat runs on a cluster —
the program, the file extensions it is chosen for, the arguments a user may add (each a literal
or a regular expression; ``{}`` stands for the input file's name), its Slurm resources, which
result files come back, and who may use it. ``calculations = {...}``: the site's quotas, where
the audit goes and the result limits. Every problem is reported at once, naming the cluster,
the runner and the key.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chatops.calc.registration import Places, build_places
from chatops.cluster_config import ClusterSpec, SlurmSpec, build_slurm, unknown_cluster
from chatops.params import parse_duration
from chatops.user_ids import channel_problem, user_id_problem

Error = Callable[[str, str], None]  # (where, message)

RUNNER_KEYS = {
    "program", "extensions", "allowed_args", "default_args", "description", "slurm", "results",
    "max_input_bytes", "allowed_users", "namespaces", "timeout", "concurrency",
}
RUNNER_SLURM_KEYS = {"partition", "time", "mem", "cpus", "gpus", "setup", "output_lines",
                     "poll_seconds"}
CALC_KEYS = {
    "quota", "approved_quota", "quota_window", "audit_channel", "max_result_bytes",
    "max_results_bytes", "max_result_files", "result_extensions", "organisations",
    "register_from", "keep_results",
}
WINDOWS = ("month", "30 days")
NAMESPACE = "run"  # calculations are jobs of this (reserved) namespace: run_<cluster>.<runner>
DEFAULT_RESULT_EXTENSIONS = (
    ".out", ".log", ".txt", ".csv", ".dat", ".json", ".xyz", ".pdb", ".fchk", ".chk", ".cube",
    ".xml", ".png", ".svg", ".pdf",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_EXTENSION = re.compile(r"^\.[A-Za-z0-9][A-Za-z0-9_.-]*$")
FILE = "{}"  # in allowed_args, default_args and program: the input file's name


@dataclass(frozen=True)
class ArgRule:
    """One allowed argument: a literal (compared exactly) or a regular expression (the whole
    argument must match); ``{}`` in either stands for the input file's name."""

    text: str
    is_regex: bool = False

    def matches(self, arg: str, file_name: str) -> bool:
        if not self.is_regex:
            return arg == self.text.replace(FILE, file_name)
        return re.fullmatch(self.text.replace(FILE, re.escape(file_name)), arg) is not None

    def __str__(self) -> str:
        return f"/{self.text}/" if self.is_regex else self.text


@dataclass(frozen=True)
class RunnerSpec:
    cluster: str
    name: str
    program: str
    extensions: tuple[str, ...] = ()
    allowed_args: tuple[ArgRule, ...] = ()
    default_args: tuple[str, ...] = (FILE,)
    description: str = ""
    slurm: SlurmSpec = field(default_factory=SlurmSpec)
    results: tuple[str, ...] = ()  # globs; empty: new files with an allowed extension
    max_input_bytes: int = 10 * 1024 * 1024
    allowed_users: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()  # those who may use one of these namespaces may use it
    timeout: float = 7 * 86400.0
    concurrency: int = 1000

    @property
    def job_type(self) -> str:
        return f"{NAMESPACE}_{self.cluster}.{self.name}"

    def command(self, file_name: str, args: list[str]) -> str:
        """The line the batch script runs: every argument and the file name quoted."""
        import shlex

        quoted = " ".join(shlex.quote(a.replace(FILE, file_name)) for a in args)
        fields = template_fields(self.program)
        line = self.program.replace("{args}", quoted).replace(FILE, shlex.quote(file_name))
        return line if "args" in fields else f"{line} {quoted}".rstrip()


@dataclass(frozen=True)
class CalcSettings:
    quota: int = 5  # calculations a month (or 30 days) for a user not approved
    approved_quota: int = 25
    quota_window: str = "month"  # "month": the calendar month (UTC); "30 days": rolling
    audit_channel: str | None = None  # default: admin_channel
    max_result_bytes: int = 20 * 1024 * 1024  # one result file
    max_results_bytes: int = 45 * 1024 * 1024  # all of one calculation's
    max_result_files: int = 10  # more: one .tar.gz of them
    result_extensions: tuple[str, ...] = DEFAULT_RESULT_EXTENSIONS
    # an organisation's own quotas (by its label): {"chem": {"quota": 10, "approved_quota": 50}}
    organisations: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # where new users may register (calc/registration.py); None: anywhere
    register_from: Places | None = None
    # seconds after its end a calculation's result files are removed by the dispatcher (None:
    # only `chatops prune` removes them); never while a download link to them works
    keep_results: float | None = None


def template_fields(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError:
        return {"<invalid>"}


def _regex_rule(error: Error, where: str, pattern: Any) -> ArgRule | None:
    text = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
    if not isinstance(text, str):
        error(where, f"'allowed_args': a regex is text, not {type(text).__name__}")
        return None
    try:
        re.compile(text.replace(FILE, "x"))
    except re.error as exc:
        error(where, f"'allowed_args': {text!r} is not a valid regular expression: {exc}")
        return None
    return ArgRule(text, is_regex=True)


def _arg_rules(error: Error, where: str, raw: Any) -> tuple[ArgRule, ...]:
    if raw is None:
        return (ArgRule(FILE),)
    if not isinstance(raw, (list, tuple)):
        error(where, "'allowed_args' is a list of literals, re.compile(...) or "
              "{'regex': ...} items")
        return ()
    rules = []
    for item in raw:
        rule = None
        if isinstance(item, str):
            rule = ArgRule(item)
        elif isinstance(item, re.Pattern):
            rule = _regex_rule(error, where, item)
        elif isinstance(item, Mapping) and set(item) == {"regex"}:
            rule = _regex_rule(error, where, item["regex"])
        else:
            error(where, f"'allowed_args': {item!r} is not a literal, re.compile(...) or "
                  "{'regex': ...}")
        if rule:
            rules.append(rule)
    return tuple(rules)


def _strings(error: Error, where: str, raw: Mapping[str, Any], key: str,
             default: tuple[str, ...]) -> tuple[str, ...]:
    value = raw.get(key, default)
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(
            isinstance(v, str) for v in value):
        error(where, f"{key!r} must be a list of strings, not {value!r}")
        return default
    return tuple(value)


def _positive(error: Error, where: str, raw: Mapping[str, Any], key: str, default: Any,
              kind: type | tuple = int) -> Any:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        error(where, f"{key!r} must be a positive number, not {value!r}")
        return default
    return value


def build_runners(error: Error, raw: Any, clusters: Mapping[str, ClusterSpec],
                  namespaces: set[str]) -> dict[str, RunnerSpec]:
    """Validate ``runners``: job type -> runner."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        error("runners", "must be a dict: cluster name -> {runner name: {...}}")
        return {}
    runners: dict[str, RunnerSpec] = {}
    for cluster, items in raw.items():
        where = f"runners of cluster {cluster!r}"
        if cluster not in clusters:
            error(where, unknown_cluster(cluster, clusters))
            continue
        if not isinstance(items, Mapping):
            error(where, "must be a dict: runner name -> {...}")
            continue
        claims: dict[str, str] = {}
        for name, item in items.items():
            runner_where = f"cluster {cluster!r}, runner {name!r}"
            if not isinstance(name, str) or not _NAME.match(name):
                error(runner_where, "a runner name is letters, digits, '_' and '-'")
                continue
            if not isinstance(item, Mapping):
                error(runner_where, f"must be a dict, not {type(item).__name__}")
                continue
            spec = _build_runner(error, runner_where, cluster, name, item, namespaces)
            if spec is None:
                continue
            for extension in spec.extensions:
                other = claims.setdefault(extension.lower(), name)
                if other != name:
                    error(runner_where, f"extension {extension!r} is claimed by runner "
                          f"{other!r} too; on one cluster an extension picks one runner")
            runners[spec.job_type] = spec
    return runners


def _build_runner(error: Error, where: str, cluster: str, name: str, raw: Mapping[str, Any],
                  namespaces: set[str]) -> RunnerSpec | None:
    for key in sorted(set(raw) - RUNNER_KEYS):
        error(where, f"unknown key {key!r} (allowed: {', '.join(sorted(RUNNER_KEYS))})")
    program = raw.get("program")
    missing = not isinstance(program, str) or not program.strip()
    if missing:  # the other keys are still checked: every error at once
        error(where, "'program' is required (the command the batch script runs)")
        program = ""
    fields = template_fields(program) - {"", "args"}
    if fields:
        error(where, f"'program' may hold {{}} (the input file) and {{args}}, not "
              f"{', '.join('{' + f + '}' for f in sorted(fields))}")
    extensions = _strings(error, where, raw, "extensions", ())
    for extension in extensions:
        if not _EXTENSION.match(extension):
            error(where, f"'extensions': {extension!r} is not an extension such as '.gjf'")
    rules = _arg_rules(error, where, raw.get("allowed_args"))
    defaults = _strings(error, where, raw, "default_args", (FILE,))
    slurm_raw = raw.get("slurm", {})
    if isinstance(slurm_raw, Mapping):
        for key in sorted(set(slurm_raw) - RUNNER_SLURM_KEYS):
            error(f"{where}, key 'slurm'", f"unknown key {key!r} (allowed: "
                  f"{', '.join(sorted(RUNNER_SLURM_KEYS))})")
        slurm_raw = {k: v for k, v in slurm_raw.items() if k in RUNNER_SLURM_KEYS}
    slurm = build_slurm(error, where, slurm_raw) or SlurmSpec()
    users = _strings(error, where, raw, "allowed_users", ())
    for user in users:
        problem = user_id_problem(user)
        if problem:
            error(where, f"'allowed_users': {problem}")
    allowed_namespaces = _strings(error, where, raw, "namespaces", ())
    for ns in allowed_namespaces:
        if ns not in namespaces:
            error(where, f"'namespaces': {ns!r} is not a namespace of raw_config")
    description = raw.get("description", "")
    if not isinstance(description, str):
        error(where, "'description' must be text (shown by `help`)")
        description = ""
    spec = RunnerSpec(
        cluster=cluster, name=name, program=program, extensions=extensions,
        allowed_args=rules, default_args=defaults, description=description, slurm=slurm,
        results=_strings(error, where, raw, "results", ()),
        max_input_bytes=_positive(error, where, raw, "max_input_bytes", 10 * 1024 * 1024),
        allowed_users=users, namespaces=allowed_namespaces,
        timeout=float(_positive(error, where, raw, "timeout", 7 * 86400.0, (int, float))),
        concurrency=_positive(error, where, raw, "concurrency", 1000),
    )
    return None if missing else spec


def build_calc_settings(error: Error, raw: Any) -> CalcSettings:
    """Validate ``calculations`` (quotas, audit channel, result limits)."""
    if raw is None:
        return CalcSettings()
    where = "calculations"
    if not isinstance(raw, Mapping):
        error(where, "must be a dict")
        return CalcSettings()
    for key in sorted(set(raw) - CALC_KEYS):
        error(where, f"unknown key {key!r} (allowed: {', '.join(sorted(CALC_KEYS))})")
    default = CalcSettings()
    values: dict[str, Any] = {}
    for key in ("quota", "approved_quota"):
        value = raw.get(key, getattr(default, key))
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            error(where, f"{key!r} must be a whole number of calculations, not {value!r}")
        else:
            values[key] = value
    for key in ("max_result_bytes", "max_results_bytes", "max_result_files"):
        values[key] = _positive(error, where, raw, key, getattr(default, key))
    window = raw.get("quota_window", default.quota_window)
    if window not in WINDOWS:
        error(where, f"'quota_window' is {window!r}; use one of {', '.join(map(repr, WINDOWS))}")
    else:
        values["quota_window"] = window
    channel = raw.get("audit_channel")
    if channel is not None:
        problem = channel_problem(channel)
        if problem:
            error(where, f"'audit_channel': {problem}")
        else:
            values["audit_channel"] = channel
    orgs = raw.get("organisations", {})
    if not isinstance(orgs, Mapping):
        error(where, "'organisations' maps an organisation's label to its quotas")
        orgs = {}
    for label, quotas in orgs.items():
        bad = (not isinstance(quotas, Mapping) or set(quotas) - {"quota", "approved_quota"}
               or any(isinstance(v, bool) or not isinstance(v, int) or v < 0
                      for v in quotas.values()))
        if bad:
            error(where, f"'organisations': {label!r} must be {{'quota': n, 'approved_quota': "
                  f"n}} (whole numbers), not {quotas!r}")
    values["organisations"] = {k: dict(v) for k, v in orgs.items() if isinstance(v, Mapping)}
    keep = raw.get("keep_results")
    if keep is not None:
        seconds = (parse_duration(str(keep)) if isinstance(keep, (str, int, float))
                   and not isinstance(keep, bool) else None)
        if not seconds:
            error(where, f"'keep_results' must be a length of time such as '30d' or '12w', "
                  f"not {keep!r}")
        else:
            values["keep_results"] = seconds
    extensions = _strings(error, where, raw, "result_extensions", default.result_extensions)
    values["result_extensions"] = tuple(e.lower() for e in extensions)
    values["register_from"] = build_places(error, raw.get("register_from"))
    return CalcSettings(**values)
