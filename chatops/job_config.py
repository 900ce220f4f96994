"""The job-config model: ``raw_config`` in ebmbot/bennettbot's format, as typed specs.

``config_loader.py`` validates a config file into it (each namespace by ``namespace_config.py``,
the other sections by their own modules).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chatops.calc.config import NAMESPACE as CALC_NAMESPACE
from chatops.calc.config import CalcSettings, RunnerSpec
from chatops.cluster_config import ClusterSpec, SlurmSpec
from chatops.github_rules import GithubRule
from chatops.monitor_config import MonitorSpec
from chatops.params import ParamType
from chatops.schedule_config import ScheduleSpec
from chatops.telemetry_config import TelemetrySpec

DEFAULT_TIMEOUT = 3600.0
_PARAM = re.compile(r"^\[(\w+)\]$")


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


def runner_job(runner: RunnerSpec) -> JobSpec:
    """A runner as a job: a calculation is a Slurm batch job of the ``run`` namespace."""
    return JobSpec(namespace=CALC_NAMESPACE, name=f"{runner.cluster}.{runner.name}",
                   run_args_template=runner.program, report_stdout=False,
                   timeout=runner.timeout, concurrency=runner.concurrency,
                   cluster=runner.cluster, slurm=runner.slurm)
