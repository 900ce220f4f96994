"""Waiting on facts with a deadline, and the output the test workspaces' `gen.py` prints."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 20, what: str = "") -> T:
    """Check ``condition`` until it gives something truthy, and return that; fail after
    ``timeout`` seconds naming ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for "
                                 f"{what or condition}")
        time.sleep(0.02)


def generated(size: int) -> str:
    """What ``gen.py SIZE`` prints."""
    out, line = [], 0
    while size > 0:
        width = min(100, size)
        out.append((f"{line:04d}" + "x" * 95)[:width - 1] + "\n")
        size -= width
        line += 1
    return "".join(out)
