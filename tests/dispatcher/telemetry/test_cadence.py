"""Operations run at the UTC instants that are zero mod their cadence (an injected clock)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

from dispatcher.telemetry.cadence import Schedule, next_instant
from dispatcher.telemetry.config import parse_config
from dispatcher.telemetry.daemon import Daemon
from dispatcher.telemetry.envelope import timestamp

NOW = 1740568588  # 2025-02-26T11:16:28Z, the instant of Sonar's own cadence test


def utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_next_instants_are_zero_mod_the_cadence():
    assert utc(next_instant(NOW, 15)) == "2025-02-26 11:16:30"
    assert utc(next_instant(NOW + 15, 15)) == "2025-02-26 11:16:45"
    assert utc(next_instant(NOW + 30, 15)) == "2025-02-26 11:17:00"
    assert utc(next_instant(NOW + 31, 2)) == "2025-02-26 11:17:00"
    assert utc(next_instant(NOW, 60)) == "2025-02-26 11:17:00"
    assert utc(next_instant(NOW, 300)) == "2025-02-26 11:20:00"
    assert utc(next_instant(NOW, 7200)) == "2025-02-26 12:00:00"
    assert utc(next_instant(NOW, 86400)) == "2025-02-27 00:00:00"
    # whole days: the midnights whose day number since 1970-01-01 divides by the day count
    assert utc(next_instant(NOW, 2 * 86400)) == "2025-02-27 00:00:00"  # day 20146
    assert utc(next_instant(NOW, 3 * 86400)) == "2025-03-01 00:00:00"  # day 20148
    assert next_instant(NOW + 2, 15) == NOW + 2  # an instant is its own next


class FakeClock:
    """Time that passes only when the daemon waits."""

    def __init__(self, start: float):
        self.now = start

    def time(self) -> float:
        return self.now

    def wait(self, seconds: float, wake: threading.Event) -> bool:
        if wake.is_set():
            return True
        self.now += max(0.0, seconds)
        return False


def test_a_schedule_runs_each_operation_on_its_instants():
    clock = FakeClock(NOW)
    schedule = Schedule({"sample": 15, "job": 300, "sysinfo": 86400}, clock.time(),
                        at_start=["sysinfo"])
    runs = []
    while clock.time() < NOW + 600:
        runs += [(op, utc(clock.time())) for op in schedule.due(clock.time())]
        clock.wait(schedule.next_due() - clock.time(), threading.Event())
    assert runs[:8] == [
        ("sysinfo", "2025-02-26 11:16:28"),  # on-startup
        ("sample", "2025-02-26 11:16:30"), ("sample", "2025-02-26 11:16:45"),
        ("sample", "2025-02-26 11:17:00"), ("sample", "2025-02-26 11:17:15"),
        ("sample", "2025-02-26 11:17:30"), ("sample", "2025-02-26 11:17:45"),
        ("sample", "2025-02-26 11:18:00"),
    ]
    assert [t for op, t in runs if op == "job"] == ["2025-02-26 11:20:00",
                                                    "2025-02-26 11:25:00"]
    assert [t for op, t in runs if op == "sysinfo"] == ["2025-02-26 11:16:28"]
    assert len([1 for op, _ in runs if op == "sample"]) == 40


def test_missed_instants_are_not_caught_up():
    schedule = Schedule({"sample": 60, "job": 300}, NOW)
    assert schedule.due(NOW + 3600.5) == ["sample", "job"]  # an hour asleep: once each
    assert utc(schedule.next["sample"]) == "2025-02-26 12:17:00"
    assert utc(schedule.next["job"]) == "2025-02-26 12:20:00"
    assert schedule.due(NOW + 3601) == []


def test_the_daemon_samples_on_the_instants(tmp_path):
    """The daemon itself, on an injected clock: the times in what it writes are the instants."""
    start = (int(time.time()) // 60) * 60 + 28  # 28 s past a minute
    config = parse_config(f"""
[global]
cluster = cadence.example
role = node
buffer-directory = {tmp_path / 'buffer'}
[directory]
data-directory = {tmp_path / 'data'}
[sample]
cadence = 15s
[sysinfo]
cadence = 20s
[debug]
time-limit = 1m
""", tmp_path / "node.ini")
    daemon = Daemon(config, clock=FakeClock(start))
    daemon.open()
    assert daemon.run(signals=False) == 0

    def times(kind: str) -> list[str]:
        [path] = (tmp_path / "data").glob(f"*/*/*/0+{kind}-*.json")
        return [json.loads(line)["data"]["attributes"]["time"]
                for line in path.read_text().splitlines()]

    assert times("sample") == [timestamp(start + s) for s in (2, 17, 32, 47)]
    assert times("sysinfo") == [timestamp(start + s) for s in (0, 12, 32, 52)]
    assert list((tmp_path / "buffer").glob("*.msg")) == []
