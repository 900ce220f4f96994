"""Tests that need a service: skipped where it is missing, but failed in CI (``CI=true``),
where every tier must run."""

from __future__ import annotations

import os

import pytest


def require(available: bool, what: str, how: str = "") -> None:
    """``how``: the command that provides ``what`` (e.g. ``scripts/test-cluster.sh up``)."""
    if available:
        return
    hint = f" ({how})" if how else ""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI but is not available{hint}")
    pytest.skip(f"{what} is not available{hint}")
