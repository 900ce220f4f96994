"""The queue's batch claims and finishes (what one turn of the dispatcher's loop asks), on
SQLite and PostgreSQL, and readers that never wait for a writer."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatops import migrate
from chatops.db import make_engine
from chatops.events import Requester
from chatops.queue import Finish, Queue
from tests.support.cli import CHATOPS, spine_env

WHO = Requester(platform="console", user="alice", channel="c1")
REPORT = {"kind": "report", "text": "done"}


@pytest.fixture(params=["sqlite", "postgresql"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Queue]:
    url = (f"sqlite:///{tmp_path / 'chatops.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    engine = make_engine(url)
    migrate.upgrade(engine)
    yield Queue(engine)
    engine.dispose()


def test_a_batch_claim_fills_the_free_slots_within_every_limit(queue: Queue) -> None:
    now = time.time()
    for n in range(5):  # at most 2 of these at once
        queue.enqueue("tests_pair", {"n": str(n)}, WHO, timeout=60, concurrency=2, now=now)
    for n in range(3):  # suppressed for now
        queue.enqueue("tests_sleep", {"n": str(n)}, WHO, timeout=60, concurrency=9, now=now)
    for n in range(4):  # free to run, but started after the others were asked for
        queue.enqueue("tests_echo", {"n": str(n)}, WHO, timeout=60, concurrency=9, now=now + 1)
    queue.enqueue("tests_later", {}, WHO, timeout=60, delay=3600, now=now)  # not due
    queue.suppress("tests_sleep", now - 1, now + 3600, "test", now=now)

    taken = queue.claim_many("w1", 5, now + 2)
    assert [r.job_type for r in taken] == ["tests_pair", "tests_pair", "tests_echo",
                                           "tests_echo", "tests_echo"]  # in start order
    more = queue.claim_many("w2", 8, now + 2)
    assert Counter(r.job_type for r in more) == {"tests_echo": 1}  # the pair type is full
    assert queue.claim_many("w2", 8, now + 2) == []
    queue.finish(taken[0].id, "succeeded")
    assert [r.job_type for r in queue.claim_many("w2", 8, now + 2)] == ["tests_pair"]


def test_a_type_without_a_limit_runs_as_many_as_there_are_slots(queue: Queue) -> None:
    """Slurm batch types: Slurm is the queue, so no per-type limit holds them back."""
    now = time.time()
    for n in range(4):
        queue.enqueue("hpc_sim", {"n": str(n)}, WHO, timeout=60, concurrency=None, now=now)
    queue.enqueue("hpc_capped", {}, WHO, timeout=60, concurrency=1, now=now)
    queue.enqueue("hpc_capped", {"n": "2"}, WHO, timeout=60, concurrency=1, now=now)
    assert Counter(r.job_type for r in queue.claim_many("w1", 9, now + 1)) == {
        "hpc_sim": 4, "hpc_capped": 1}
    queue.enqueue("hpc_sim", {"n": "late"}, WHO, timeout=60, concurrency=None, now=now)
    assert [r.job_type for r in queue.claim_many("w2", 9, now + 1)] == ["hpc_sim"]


def test_a_batch_finish_queues_each_report_exactly_once(queue: Queue) -> None:
    ids = [queue.enqueue("tests_echo", {"n": str(n)}, WHO, timeout=60, concurrency=9).job_id
           for n in range(3)]
    queue.enqueue("tests_echo", {"n": "0"}, Requester("console", "bob", "c2"), timeout=60,
                  concurrency=9)
    claimed = queue.claim_many("w1", 3)
    assert sorted(r.id for r in claimed) == ids
    queue.finish(ids[2], "cancelled", only_from=("running",))  # ended meanwhile (a cancel)
    ends = [Finish(job_id, "succeeded", 0, "succeeded", REPORT) for job_id in ids]
    assert queue.finish_many(ends, processes=[(ids[0], 4242, 99)]) == [2, 1, 0]  # 2: joined
    assert queue.finish_many(ends) == [0, 0, 0]  # again: nothing more
    assert [queue.get(i).state for i in ids] == ["succeeded", "succeeded", "cancelled"]
    assert (queue.get(ids[0]).pid, queue.get(ids[0]).pid_start) == (4242, 99)


def test_readers_answer_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = spine_env(home)
    subprocess.run([CHATOPS, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([CHATOPS, "chat", "tests echo hi", "--no-wait"], env=env, check=True,
                   capture_output=True)
    writer = sqlite3.connect(home / "chatops.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a dispatcher mid-claim, say (busy timeout: 30 s)
    try:
        listing = subprocess.run([CHATOPS, "jobs", "list"], env=env, capture_output=True,
                                 text=True, timeout=20)
        status = subprocess.run([CHATOPS, "chat", "status"], env=env, capture_output=True,
                                text=True, timeout=20)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert listing.returncode == 0 and "queued     tests_echo" in listing.stdout
    assert "Scheduled: 1 job" in status.stdout
