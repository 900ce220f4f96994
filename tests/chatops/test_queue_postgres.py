"""PostgreSQL: the same queue with several dispatchers — no job runs twice, limits hold."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from chatops.events import Requester
from chatops.service import open_queue
from chatops.settings import load_settings
from tests.support.cli import Chatops, spine_env

pytestmark = pytest.mark.slow  # whole stacks and real processes: seconds per test


def test_three_dispatchers_share_1000_jobs_without_running_any_twice(
        tmp_path: Path, pg_url: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    runner = Chatops(home, spine_env(home, CHATOPS_DATABASE_URL=pg_url))
    runner("db", "upgrade", check=True)
    settings = load_settings(runner.env)
    queue = open_queue(settings)
    who = Requester(platform="console", user="bench", channel="bench")
    for n in range(1000):
        queue.enqueue("tests_many", {"n": str(n)}, who, timeout=60, concurrency=100)
    for n in range(40):  # a concurrency-1 type: never two at once, across dispatchers
        queue.enqueue("tests_serial", {"n": str(n)}, who, timeout=60, concurrency=1)
    try:
        for _ in range(3):
            runner.start_dispatcher()
        deadline = time.time() + 120
        while time.time() < deadline and queue.jobs_in(("queued", "running")):
            time.sleep(0.2)
        assert not queue.jobs_in(("queued", "running")), "jobs were left unfinished"
    finally:
        runner.stop_all()

    jobs = queue.history(2000)
    assert Counter(j.state for j in jobs) == {"succeeded": 1040}
    ran = (settings.writeable_dir / "many.txt").read_text().split()
    assert len(ran) == 1000 and set(ran) == {str(n) for n in range(1000)}
    by_dispatcher = Counter(j.claimed_by for j in jobs)
    assert len(by_dispatcher) == 3, by_dispatcher  # all three took part

    events = []
    for line in (settings.writeable_dir / "serial.txt").read_text().splitlines():
        kind, n, at = line.split()
        events.append((float(at), kind, n))
    running = 0
    for _, kind, _ in sorted(events):
        running += 1 if kind == "start" else -1
        assert running <= 1, "two jobs of a concurrency-1 type overlapped"


def test_dedupe_on_postgres(tmp_path: Path, pg_url: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    runner = Chatops(home, spine_env(home, CHATOPS_DATABASE_URL=pg_url))
    runner("db", "upgrade", check=True)
    queue = open_queue(load_settings(runner.env))
    first = queue.enqueue("tests_echo", {"words": "x"}, Requester("console", "a"), timeout=5)
    second = queue.enqueue("tests_echo", {"words": "x"}, Requester("console", "b"), timeout=5)
    third = queue.enqueue("tests_echo", {"words": "y"}, Requester("console", "c"), timeout=5)
    assert (second.job_id, second.joined) == (first.job_id, True)
    assert third.job_id != first.job_id and not third.joined
    assert [s.user for s in queue.subscribers_of(first.job_id)] == ["a", "b"]
