"""Checks that every section of job_configs.py makes alike, in the same words."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

Error = Callable[[str, str], None]  # (where, message)


def unknown_keys(error: Error, where: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
    """An error for each key of ``raw`` that is not ``allowed``, naming those that are."""
    for key in sorted(set(raw) - allowed):
        error(where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")


def job_type_problem(job_type: Any, raw_jobs: Mapping[str, Any], whose: str) -> str | None:
    """What is wrong with a ``job_type`` naming one of ``raw_jobs`` (None: nothing); ``whose``
    names the namespace in the message."""
    if isinstance(job_type, str) and job_type in raw_jobs:
        return None
    known = ", ".join(sorted(raw_jobs)) or "none defined"
    return f"'job_type' {job_type!r} is not a job of {whose} ({known})"


def one_of(error: Error, where: str, key: str, value: Any, choices: Collection[Any],
           use: str) -> bool:
    """Whether ``value`` is one of ``choices``; if not, an error saying what to ``use``."""
    if value in choices:
        return True
    error(where, f"{key!r} is {value!r}; use {use}")
    return False
