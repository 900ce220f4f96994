"""Helpers shared by the platform tests."""

from __future__ import annotations

import time
from collections.abc import Callable


def generated(size: int) -> str:
    """What ``gen.py SIZE`` prints."""
    out, line = [], 0
    while size > 0:
        width = min(100, size)
        out.append((f"{line:04d}" + "x" * 95)[:width - 1] + "\n")
        size -= width
        line += 1
    return "".join(out)


def wait_until(condition: Callable[[], object], timeout: float = 15, what: str = "") -> object:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or condition}")
