"""A namespace's ``schedules`` in job_configs.py, validated: jobs that run on a cron or every N.

::

    "schedules": [
        {"name": "morning", "job_type": "report", "args": {"site": "oslo"},
         "cron": "0 7 * * 1-5", "timezone": "Europe/Oslo",
         "report_to": "slack:C0123ABCD", "misfire": "run once"},
        {"name": "poll", "job_type": "check", "every": "15m", "misfire": "skip"},
    ]

Every error names the namespace, the schedule and the key. The report goes to ``report_to``
(``platform:channel``), else to the namespace's ``default_channel``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chatops.config_checks import Error, job_type_problem, one_of, unknown_keys
from chatops.params import args_problem
from chatops.triggers import Trigger, TriggerError, cron_trigger, every_trigger, time_zone
from chatops.user_ids import CHANNEL_IDS, channel_problem

SCHEDULE_KEYS = {"name", "job_type", "args", "cron", "timezone", "every", "report_to", "misfire"}
MISFIRE = ("run once", "skip")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class ScheduleSpec:
    namespace: str
    name: str
    job: str  # the job's name within the namespace
    args: tuple[tuple[str, str], ...]
    trigger: Trigger
    report_to: str  # 'platform:channel', or a bare default_channel (see report_target)
    misfire: str = "run once"

    @property
    def key(self) -> str:
        """How people and the database name it: ``<namespace>/<name>``."""
        return f"{self.namespace}/{self.name}"

    @property
    def job_type(self) -> str:
        return f"{self.namespace}_{self.job}"

    @property
    def arguments(self) -> dict[str, str]:
        return dict(self.args)


def report_target(report_to: str, slack_configured: bool) -> tuple[str, str]:
    """(platform, channel). A bare channel is a ``default_channel`` written for the predecessor,
    which was a Slack bot: Slack when it is configured, else the console (on the dashboard),
    like the reports of jobs that GitHub starts."""
    platform, sep, channel = report_to.partition(":")
    if sep and platform in CHANNEL_IDS:
        return platform, channel
    return ("slack" if slack_configured else "console"), report_to


def build_schedules(error: Error, ns: str, raw: Any, raw_jobs: Mapping[str, Any],
                    default_channel: Any, template_fields: Callable[[str], set[str]]
                    ) -> tuple[ScheduleSpec, ...]:
    """Validate a namespace's ``schedules`` list."""
    where = f"namespace {ns!r}"
    if raw is None:
        return ()
    if not isinstance(raw, (list, tuple)):
        error(where, f"'schedules' must be a list of schedules, not {type(raw).__name__}")
        return ()
    specs: dict[str, ScheduleSpec] = {}
    seen: set[str] = set()
    for index, item in enumerate(raw):
        name = item.get("name") if isinstance(item, Mapping) else None
        # unnamed: counted from 1, as a namespace's github rules are
        item_where = f"{where}, schedule {name if isinstance(name, str) else index + 1!r}"
        if not isinstance(item, Mapping):
            error(item_where, f"must be a dict, not {type(item).__name__}")
            continue
        if not isinstance(name, str) or not _NAME.match(name):
            error(item_where, "'name' is required: letters, digits, '_' and '-'")
            # its other mistakes too, so that one `config check` names them all
            _build_one(error, item_where, ns, "", item, raw_jobs, default_channel,
                       template_fields)
            continue
        if name in seen:
            error(item_where, "two schedules have this name; a name is unique in its namespace")
            continue
        seen.add(name)
        spec = _build_one(error, item_where, ns, name, item, raw_jobs, default_channel,
                          template_fields)
        if spec is not None:
            specs[name] = spec
    return tuple(specs.values())


def _build_one(error: Error, where: str, ns: str, name: str, raw: Mapping[str, Any],
               raw_jobs: Mapping[str, Any], default_channel: Any,
               template_fields: Callable[[str], set[str]]) -> ScheduleSpec | None:
    unknown_keys(error, where, raw, SCHEDULE_KEYS)
    ok = True
    job = raw.get("job_type")
    problem = job_type_problem(job, raw_jobs, f"namespace {ns!r}")
    if problem:
        error(where, problem)
        ok = False
    args = _arguments(error, where, raw.get("args", {}))
    if ok and args is not None and isinstance(raw_jobs[job], Mapping):
        template = raw_jobs[job].get("run_args_template")
        wanted = template_fields(template) if isinstance(template, str) else set()
        if set(args) != wanted:
            error(where, f"'args' {sorted(args)} do not match the template fields "
                  f"{sorted(wanted)} of job {job!r}")
            ok = False
    trigger = _trigger(error, where, raw)
    report_to = raw.get("report_to")
    if report_to is not None:
        problem = channel_problem(report_to)
        if problem:
            error(where, f"'report_to': {problem}")
            ok = False
    elif not isinstance(default_channel, str) or not default_channel:
        error(where, "'report_to' is required: the namespace has no default_channel "
              "(write 'platform:channel', e.g. 'slack:C0123ABCD')")
        ok = False
    misfire = raw.get("misfire", "run once")
    if not one_of(error, where, "misfire", misfire, MISFIRE,
                  "'run once' (a fire missed while no dispatcher ran runs once, late) or 'skip'"):
        ok = False
    if not ok or trigger is None or args is None:
        return None
    return ScheduleSpec(namespace=ns, name=name, job=job, args=tuple(sorted(args.items())),
                        trigger=trigger, report_to=report_to or default_channel,
                        misfire=misfire)


def _arguments(error: Error, where: str, raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, Mapping):
        error(where, f"'args' must be a dict of the job's template fields, not "
              f"{type(raw).__name__}")
        return None
    args = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            error(where, f"'args' {key!r} must be text or a number, not {value!r}")
            return None
        args[str(key)] = str(value)
    problem = args_problem(args)
    if problem:
        error(where, f"'args': {problem}")
        return None
    return args


def _trigger(error: Error, where: str, raw: Mapping[str, Any]) -> Trigger | None:
    zone = raw.get("timezone", "UTC")
    try:
        time_zone(zone)
    except TriggerError as exc:
        error(where, f"'timezone': {exc}")
        return None
    try:
        if ("cron" in raw) == ("every" in raw):
            error(where, "give either 'cron' (e.g. '0 7 * * 1-5', with 'timezone') or "
                  "'every' (e.g. '15m'), not both or neither")
            return None
        if "cron" in raw:
            return cron_trigger(raw["cron"], zone)
        return every_trigger(raw["every"], zone)
    except TriggerError as exc:
        key = "cron" if "cron" in raw else "every"
        error(where, f"{key!r}: {exc}")
        return None
