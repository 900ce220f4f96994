"""Which GitHub webhook events schedule which jobs: the ``github`` key of a namespace.

A namespace lists rules; every rule that matches a delivery schedules its job::

    "github": [
        {"event": "pull_request", "action": "closed", "merged": True, "branches": ["$default"],
         "job_type": "deploy", "args": {"sha": "$sha"}, "delay_seconds": 60},
        {"event": "push", "branches": ["main", "release"], "job_type": "build",
         "args": {"ref": "ref", "who": "pusher.name"}},
        {"event": "workflow_run", "action": "completed", "conclusion": "success", ...},
    ],
    "github_legacy_sha1": False,   # accept the old X-Hub-Signature (SHA-1) too

``args`` maps a template field of the job to a dotted path in the payload
(``pull_request.head.ref``) or to a shortcut that means the same on every event: ``$branch``,
``$sha``, ``$number``, ``$author``, ``$repository``, ``$event``, ``$action``, ``$delivery``.
``$default`` in ``branches`` is the repository's default branch. A namespace with a ``deploy``
job and no ``github`` key keeps the predecessor's behaviour: a pull request merged into the
default branch schedules ``deploy`` 60 s later. ``"github": []`` turns that off.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chatops.config_checks import Error, job_type_problem, unknown_keys

RULE_KEYS = {"event", "action", "actions", "branches", "conclusion", "conclusions", "merged",
             "job_type", "args", "delay_seconds"}
SHORTCUTS = ("branch", "sha", "number", "author", "repository", "event", "action", "delivery")
DEFAULT_BRANCH = "$default"
DEFAULT_DEPLOY_DELAY = 60.0
_EVENT = re.compile(r"^[a-z_]+$")
_PATH = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


@dataclass(frozen=True)
class GithubRule:
    event: str
    job_type: str  # the job's name within the namespace
    actions: tuple[str, ...] = ()  # empty: any action
    branches: tuple[str, ...] = ()  # empty: any branch (or none)
    conclusions: tuple[str, ...] = ()  # empty: any conclusion
    merged: bool | None = None  # pull_request only: require (or exclude) a merge
    args: Mapping[str, str] = field(default_factory=dict)  # template field -> path/shortcut
    delay_seconds: float = 0.0

    def describe(self) -> str:
        what = self.event + (f" {'/'.join(self.actions)}" if self.actions else "")
        if self.merged:
            what += " (merged)"
        if self.branches:
            what += f" on {', '.join(self.branches)}"
        return what


def _strings(value: Any) -> tuple[str, ...] | None:
    """A string or a list of strings as a tuple; None when it is neither."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _fields(template: Any) -> set[str]:
    if not isinstance(template, str):
        return set()
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError:
        return set()


def build_rules(error: Error, where: str, raw_rules: Any,
                raw_jobs: Mapping[str, Any]) -> tuple[GithubRule, ...]:
    """Validate a namespace's ``github`` list; ``error(where, message)`` records each problem."""
    if not isinstance(raw_rules, list | tuple):
        error(where, f"'github' must be a list of rules, not {type(raw_rules).__name__}")
        return ()
    rules = []
    for index, raw in enumerate(raw_rules):
        rule_where = f"{where}, github rule {index + 1}"
        if not isinstance(raw, Mapping):
            error(rule_where, f"must be a dict, not {type(raw).__name__}")
            continue
        rule = _build_rule(error, rule_where, raw, raw_jobs)
        if rule:
            rules.append(rule)
    return tuple(rules)


def _list_key(error: Error, where: str, raw: Mapping[str, Any],
              singular: str, plural: str) -> tuple[str, ...]:
    if singular in raw and plural in raw:
        error(where, f"give {singular!r} or {plural!r}, not both")
    key = plural if plural in raw else singular
    if key not in raw:
        return ()
    values = _strings(raw[key])
    if values is None:
        error(where, f"{key!r} must be a string or a list of strings, not {raw[key]!r}")
        return ()
    return values


def _build_rule(error: Error, where: str, raw: Mapping[str, Any],
                raw_jobs: Mapping[str, Any]) -> GithubRule | None:
    unknown_keys(error, where, raw, RULE_KEYS)
    ok = True
    event = raw.get("event")
    if not isinstance(event, str) or not _EVENT.match(event):
        error(where, f"'event' must be a GitHub event name such as 'push', not {event!r}")
        ok = False
    job_type = raw.get("job_type")
    problem = job_type_problem(job_type, raw_jobs, "this namespace")
    if problem:
        error(where, problem)
        ok = False
    actions = _list_key(error, where, raw, "action", "actions")
    conclusions = _list_key(error, where, raw, "conclusion", "conclusions")
    branches = _strings(raw.get("branches", ()))
    if branches is None:
        error(where, f"'branches' must be a list of branch names, not {raw['branches']!r}")
        branches = ()
    merged = raw.get("merged")
    if merged is not None and (not isinstance(merged, bool) or event != "pull_request"):
        error(where, "'merged' is true or false, and only for the 'pull_request' event")
        merged = None
    delay = raw.get("delay_seconds", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
        error(where, f"'delay_seconds' must be a number of seconds ≥ 0, not {delay!r}")
        delay = 0
    args = raw.get("args", {})
    if not isinstance(args, Mapping):
        error(where, f"'args' maps template fields to payload paths, not {args!r}")
        args = {}
    for name, path in args.items():
        if isinstance(path, str) and path.startswith("$"):
            if path[1:] not in SHORTCUTS:
                error(where, f"arg {name!r}: unknown shortcut {path!r} (known: "
                      f"{', '.join('$' + s for s in SHORTCUTS)})")
        elif not isinstance(path, str) or not _PATH.match(path):
            error(where, f"arg {name!r}: {path!r} is not a dotted payload path such as "
                  "'pull_request.head.sha'")
    if not ok:
        return None
    job = raw_jobs[job_type]
    wanted = _fields(job.get("run_args_template")) if isinstance(job, Mapping) else set()
    if set(args) != wanted:
        error(where, f"args {sorted(args)} do not match the template fields {sorted(wanted)} "
              f"of job {job_type!r}")
    return GithubRule(event=event, job_type=job_type, actions=actions, branches=branches,
                      conclusions=conclusions, merged=merged, args=dict(args),
                      delay_seconds=float(delay))


def default_rules(raw_jobs: Mapping[str, Any]) -> tuple[GithubRule, ...]:
    """The predecessor's behaviour for a namespace with a ``deploy`` job and no ``github`` key.

    The deploy job's template fields are filled from the shortcuts of the same name
    (``{sha}``, ``{branch}``, ...); a template needing anything else gets no default rule.
    """
    deploy = raw_jobs.get("deploy")
    if not isinstance(deploy, Mapping):
        return ()
    wanted = _fields(deploy.get("run_args_template"))
    if not wanted <= set(SHORTCUTS):
        return ()
    return (GithubRule(event="pull_request", job_type="deploy", actions=("closed",),
                       branches=(DEFAULT_BRANCH,), merged=True,
                       args={name: "$" + name for name in sorted(wanted)},
                       delay_seconds=DEFAULT_DEPLOY_DELAY),)
