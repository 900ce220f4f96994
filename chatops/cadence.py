"""Sonar's durations and cadences: ``30s``, ``5m``, ``1h`` (a whole number, one unit).

A cadence divides the minute, the hour or the day (or is whole days), so its instants — the UNIX
times that are zero modulo it — fall on round clock times on every host: a 5m cadence runs at
:00, :05, :10 ... Shared by the telemetry daemon's ini file and the cluster monitors of
job_configs.py. Standard library only (the telemetry daemon runs on compute nodes).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_DURATION = re.compile(r"(\d+)([hHmMsS])")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


@dataclass(frozen=True)
class Duration:
    seconds: int
    text: str  # as written: "5m"

    def __str__(self) -> str:
        return self.text


def duration(value: str) -> Duration:
    m = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"{value!r} is not a duration (write a whole number with one unit: "
                         "30s, 5m, 1h)")
    count = int(m.group(1))
    if count == 0:
        raise ValueError(f"{value!r}: a duration must not be zero")
    return Duration(count * _UNIT_SECONDS[m.group(2).lower()], value)


def cadence(value: str) -> Duration:
    """A duration whose instants fall at the same UTC times on every node."""
    d = duration(value)
    count, unit = int(value[:-1]), value[-1].lower()
    if unit in ("s", "m") and not (count < 60 and 60 % count == 0):
        divisors = ", ".join(f"{n}{unit}" for n in range(1, 60) if 60 % n == 0)
        whole = "minute" if unit == "s" else "hour"
        raise ValueError(f"{value!r}: a cadence must divide the {whole} ({divisors})")
    if unit == "h" and not (24 % count == 0 or count % 24 == 0):
        raise ValueError(f"{value!r}: a cadence in hours must divide the day (1h, 2h, 3h, 4h, "
                         "6h, 8h, 12h, 24h) or be a multiple of 24h")
    return d


def next_instant(now: float, seconds: float) -> float:
    """The first instant strictly after ``now`` that is zero mod ``seconds``."""
    return math.floor(now / seconds) * seconds + seconds
