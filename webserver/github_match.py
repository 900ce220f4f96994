"""Match a GitHub webhook payload against a namespace's rules and pull out the job's args.

Each event names its branch, commit and author in its own place; ``facts`` finds them so that a
rule can say ``$branch`` or ``$sha`` whatever the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatops.github_rules import DEFAULT_BRANCH, GithubRule

MAX_ARG_CHARS = 1000  # a payload field longer than this is not a sensible job argument


class MissingField(Exception):
    """A rule names a payload field this delivery does not have."""


@dataclass(frozen=True)
class Match:
    rule: GithubRule
    args: dict[str, str]


def dig(payload: Any, path: str) -> Any:
    """``payload["a"]["b"]`` for ``"a.b"`` (list items by index); None when absent."""
    value = payload
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _branch_of(ref: Any) -> str | None:
    if isinstance(ref, str) and ref.startswith("refs/heads/"):
        return ref[len("refs/heads/"):]
    return None


def facts(event: str, payload: Mapping[str, Any], delivery: str | None) -> dict[str, Any]:
    """The shortcuts' values for this delivery (None where the event has no such thing)."""
    pr = payload.get("pull_request") if isinstance(payload.get("pull_request"), Mapping) else {}
    branch = sha = number = author = None
    if event == "pull_request" or event.startswith("pull_request_review"):
        branch = dig(pr, "base.ref")
        sha = (pr.get("merge_commit_sha") if pr.get("merged") else None) or dig(pr, "head.sha")
        number = pr.get("number") or payload.get("number")
        author = dig(pr, "user.login")
    elif event == "push":
        branch = _branch_of(payload.get("ref"))
        sha = payload.get("after")
        author = dig(payload, "pusher.name") or dig(payload, "head_commit.author.username")
    elif event in ("workflow_run", "workflow_job", "check_suite", "check_run"):
        item = payload.get(event) or {}
        branch = item.get("head_branch") or dig(item, "check_suite.head_branch")
        sha = item.get("head_sha")
        author = dig(item, "actor.login")
    elif event == "release":
        branch = dig(payload, "release.target_commitish")
        author = dig(payload, "release.author.login")
    elif event in ("create", "delete"):
        branch = payload.get("ref") if payload.get("ref_type") == "branch" else None
    elif event in ("issues", "issue_comment"):
        number = dig(payload, "issue.number")
        author = dig(payload, "issue.user.login")
    elif event == "deployment":
        branch = dig(payload, "deployment.ref")
        sha = dig(payload, "deployment.sha")
    elif event == "status":
        sha = payload.get("sha")
    return {
        "branch": branch, "sha": sha, "number": number,
        "author": author or dig(payload, "sender.login"),
        "repository": dig(payload, "repository.full_name"),
        "event": event, "action": payload.get("action"), "delivery": delivery,
    }


def _conclusion(event: str, payload: Mapping[str, Any]) -> Any:
    item = payload.get(event)
    return item.get("conclusion") if isinstance(item, Mapping) else None


def _as_arg(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        text = str(value)
        if len(text) > MAX_ARG_CHARS:
            raise MissingField(f"{name!r} is longer than {MAX_ARG_CHARS} characters")
        return text
    raise MissingField(f"{name!r} is not a single value in this payload")


def matches(rule: GithubRule, event: str, payload: Mapping[str, Any],
            known: Mapping[str, Any]) -> bool:
    if rule.event != event:
        return False
    if rule.actions and payload.get("action") not in rule.actions:
        return False
    if rule.merged is not None and bool(dig(payload, "pull_request.merged")) != rule.merged:
        return False
    if rule.conclusions and _conclusion(event, payload) not in rule.conclusions:
        return False
    if rule.branches:
        default = dig(payload, "repository.default_branch")
        wanted = {default if b == DEFAULT_BRANCH else b for b in rule.branches}
        if known["branch"] is None or known["branch"] not in wanted:
            return False
    return True


def match_rules(rules: tuple[GithubRule, ...], event: str, payload: Mapping[str, Any],
                delivery: str | None) -> list[Match]:
    """Every rule this delivery matches, with its args; MissingField names an absent field."""
    known = facts(event, payload, delivery)
    found = []
    for rule in rules:
        if not matches(rule, event, payload, known):
            continue
        args = {}
        for name, path in rule.args.items():
            value = known.get(path[1:]) if path.startswith("$") else dig(payload, path)
            if value is None:
                raise MissingField(f"the job's arg {name!r} comes from {path!r}, which this "
                                   f"{event} delivery does not have")
            args[name] = _as_arg(name, value)
        found.append(Match(rule, args))
    return found
