"""A job's output on disk, and reading it back for reports and `logs`."""

from __future__ import annotations

from pathlib import Path

READ_LIMIT = 1024 * 1024  # what a report carries of stdout; the rest stays in the log
STDERR_TAIL_LINES = 20
STDERR_TAIL_CHARS = 1500


def read_capped(path: Path, limit: int = READ_LIMIT) -> tuple[str, bool]:
    """The start of a log file, and whether it was cut."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return "", False
    return data[:limit].decode("utf-8", "replace"), len(data) > limit


def tail(path: Path, lines: int = STDERR_TAIL_LINES, chars: int = STDERR_TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - chars * 4))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    text = "\n".join(data.rstrip("\n").splitlines()[-lines:])
    return text[-chars:]
