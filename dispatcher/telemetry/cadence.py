"""When each operation runs: at the UTC instants that are zero mod its cadence.

Cadences divide the minute, the hour or the day (or are whole days), so every node of a cluster
samples at the same instants: a 5m cadence runs at :00, :05, :10 ... UTC; 24h at midnight UTC;
48h at the midnights whose day number since 1970-01-01 is even. An instant missed (the host
was suspended, a pass overran) is not caught up: the operation runs once, at the next instant.
The clock is injected so that tests can drive it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float: ...

    def wait(self, seconds: float, wake: threading.Event) -> bool:
        """Sleep ``seconds`` or until ``wake`` is set; True if it was set."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def wait(self, seconds: float, wake: threading.Event) -> bool:
        return wake.wait(max(0.0, seconds))


def next_instant(now: float, cadence: int) -> float:
    """The first instant at or after ``now`` that is zero mod ``cadence`` seconds."""
    return math.ceil(now / cadence) * cadence


class Schedule:
    """The operations with a cadence, and when each is next due."""

    def __init__(self, cadences: Mapping[str, int], now: float, at_start: Iterable[str] = ()):
        self.cadences = dict(cadences)
        self.next = {op: next_instant(now, c) for op, c in self.cadences.items()}
        for op in at_start:
            if op in self.next:
                self.next[op] = now

    def due(self, now: float) -> list[str]:
        """Operations due at ``now`` (in the order given), each moved to its next instant."""
        ready = [op for op, at in self.next.items() if at <= now]
        for op in ready:
            cadence = self.cadences[op]
            self.next[op] = math.floor(now / cadence) * cadence + cadence
        return ready

    def next_due(self) -> float:
        return min(self.next.values(), default=math.inf)
