"""Long arguments: 10 kB queue and run on SQLite and PostgreSQL (pending jobs are unique by a
hash of their arguments, not by an index on the arguments, which PostgreSQL limits to 2704
bytes); above the one documented limit (16 KiB) the person is told why, on both."""

from __future__ import annotations

import json
import random
import re
import string
from pathlib import Path

import pytest
from sqlalchemy import select, text

from chatops import migrate
from chatops.db import args_digest, jobs, make_engine
from chatops.events import Requester
from chatops.params import MAX_ARGS_BYTES
from chatops.queue import ArgumentsTooLarge, Queue, canonical_args
from tests.support.cli import Chatops, spine_env
from tests.support.web import web_service
from webserver.app import create_app

REFUSAL = ("Not queued: the arguments are 16,385 bytes long; at most 16,384 bytes (16 KiB) are "
           "accepted. Put long input in a file the job reads instead.\n")


def random_words(size: int, seed: int) -> str:
    """About ``size`` characters of random words (shell syntax included), one space apart."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "$;|&'\"`()<>*?"
    words: list[str] = []
    while sum(map(len, words)) + len(words) < size:
        words.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))))
    return " ".join(words)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Extra environment for a CHATOPS_HOME on SQLite or on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return {}
    return {"CHATOPS_DATABASE_URL": request.getfixturevalue("pg_url")}


@pytest.mark.slow
def test_ten_kilobytes_of_arguments_run_and_too_many_are_refused(
        tmp_path: Path, database: dict[str, str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    runner = Chatops(home, spine_env(home, **database))
    runner("db", "upgrade", check=True)
    runner.start_dispatcher()
    try:
        words = random_words(10_000, seed=13)
        result = runner.chat(f"tests echo {words}")
        assert result.returncode == 0, result.stderr
        assert result.stdout == words + "\n"

        result = runner.chat("tests echo " + "y" * (MAX_ARGS_BYTES + 1))
        assert (result.returncode, result.stdout) == (1, REFUSAL)  # 1: not understood
        assert "Traceback" not in result.stderr
    finally:
        runner.stop_all()


def _queue(url: str) -> Queue:
    engine = make_engine(url)
    migrate.upgrade(engine)
    return Queue(engine)


def test_long_arguments_dedupe_on_sqlite(tmp_path: Path) -> None:
    _dedupes(_queue(f"sqlite:///{tmp_path / 'q.db'}"))


@pytest.mark.slow
def test_long_arguments_dedupe_on_postgres(pg_url: str) -> None:
    _dedupes(_queue(pg_url))


def _dedupes(queue: Queue) -> None:
    words = random_words(10_000, seed=7)
    first = queue.enqueue("tests_echo", {"words": words}, Requester("console", "a"), timeout=5,
                          count_running=False)
    second = queue.enqueue("tests_echo", {"words": words}, Requester("console", "b"), timeout=5,
                           count_running=False)
    other = queue.enqueue("tests_echo", {"words": words + "!"}, Requester("console", "c"),
                          timeout=5, count_running=False)
    assert (second.job_id, second.joined) == (first.job_id, True)
    assert other.job_id != first.job_id and not other.joined
    with pytest.raises(ArgumentsTooLarge, match="the arguments are 16,385 bytes long"):
        queue.enqueue("tests_echo", {"words": "é" * 8192 + "y"}, Requester("console", "d"),
                      timeout=5)


def test_migration_backfills_the_hash_on_sqlite(tmp_path: Path) -> None:
    _backfills(f"sqlite:///{tmp_path / 'q.db'}")


@pytest.mark.slow
def test_migration_backfills_the_hash_on_postgres(pg_url: str) -> None:
    _backfills(pg_url)


def _backfills(url: str) -> None:
    """Jobs queued before the migration get their hash, and later requests still join them."""
    engine = make_engine(url)
    migrate.upgrade(engine, "0009")
    args = canonical_args({"words": "before"})
    with engine.begin() as conn:  # as the code before the migration wrote it: no hash column
        conn.execute(text(
            "INSERT INTO jobs (namespace, job_type, args, state, concurrency, timeout, "
            "created_at, start_after, platform, is_direct, cancel_requested) VALUES "
            "('tests', 'tests_echo', :args, 'queued', 1, 5, 0, 0, 'console', :no, :no)"),
            {"args": args, "no": False})
    migrate.upgrade(engine)
    with engine.connect() as conn:
        (job_id, digest), = conn.execute(select(jobs.c.id, jobs.c.args_hash)).all()
    assert digest == args_digest(args)
    joined = Queue(engine).enqueue("tests_echo", {"words": "before"}, Requester("console", "b"),
                                   timeout=5, count_running=False)
    assert (joined.job_id, joined.joined) == (job_id, True)


@pytest.mark.slow
def test_the_web_console_queues_long_arguments_on_postgres(tmp_path: Path, pg_url: str) -> None:
    """The web console's limit (4 000 characters) is above PostgreSQL's old index limit."""
    service = web_service(tmp_path / "home", CHATOPS_WEB_TOKEN="tok-abcdef",
                          CHATOPS_DATABASE_URL=pg_url)
    client = create_app(service).test_client()
    client.get("/login?token=tok-abcdef")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/console").text)[1]
    words = random_words(3_900, seed=3)
    for _ in range(2):  # the second request joins the first (same hash)
        reply = client.post("/console/send", json={"text": f"example say hello {words}"},
                            headers={"X-CSRF-Token": csrf})
        assert reply.status_code == 200, reply.text
    job = service.queue.get(reply.json["job_id"])
    assert json.loads(job.args) == {"name": words}
    assert reply.json["replies"][0]["text"] == (
        f"Job {job.id} (`example_hello`) with the same arguments is already scheduled; you will "
        "get its report too.")
    service.queue.engine.dispose()
