"""What a database error means (chatops/storage.py), and Queue.atomic's all or nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from chatops import storage
from chatops.events import Requester
from tests.support.web import web_service

WHO = Requester(platform="console", user="alice", channel="c", user_name="alice",
                is_guest=False)


def error_of(action) -> BaseException:
    try:
        action()
    except Exception as exc:
        return exc
    raise AssertionError("no error")


def test_faults_are_told_from_other_errors(tmp_path: Path):
    db = tmp_path / "t.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.commit()
    read_only = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    found = storage.fault(error_of(lambda: read_only.execute("INSERT INTO t VALUES (1)")))
    assert found == storage.Fault(storage.READ_ONLY, "attempt to write a readonly database")
    assert found.short == "the database is read-only"
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"x" * 4096)
    found = storage.fault(error_of(lambda: sqlite3.connect(junk).execute("SELECT 1 FROM t")))
    assert found == storage.Fault(storage.DAMAGED, "file is not a database")
    assert storage.fault(error_of(lambda: read_only.execute("SELECT * FROM nothing"))) is None
    assert storage.fault(ValueError("x")) is None


def test_a_wrapped_error_is_seen_through(tmp_path: Path):
    service = web_service(tmp_path / "home")
    with service.queue.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA query_only = ON")  # read-only for this connection
        exc = error_of(lambda: conn.exec_driver_sql("DELETE FROM jobs"))
    assert isinstance(exc, DBAPIError)
    assert storage.fault(exc).kind == storage.READ_ONLY


def test_atomic_stores_all_or_nothing(tmp_path: Path):
    queue = web_service(tmp_path / "home").queue
    with pytest.raises(RuntimeError), queue.atomic():
        queue.enqueue("example_hello", {"name": "a"}, WHO, timeout=60)
        queue.add_delivery("console", {"kind": "notice", "text": "x"}, channel="c")
        raise RuntimeError("killed mid-request")
    assert queue.history() == []
    with queue.atomic():
        first = queue.enqueue("example_hello", {"name": "a"}, WHO, timeout=60)
        joined = queue.enqueue("example_hello", {"name": "a"}, WHO, timeout=60)
        assert queue.get(first.job_id).state == "queued"  # reads see the writes
    assert (joined.joined, joined.job_id) == (True, first.job_id)
    assert [job.id for job in queue.history()] == [first.job_id]
