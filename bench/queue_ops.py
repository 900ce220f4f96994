"""Queue operations alone: enqueue + claim + finish of no-op jobs on SQLite, 3 commits each.

Printed beside plain sqlite3 doing the same three statements in WAL mode in the same run (the
physical limit on this machine). Run: .venv/bin/python bench/queue_ops.py [N]
"""

from __future__ import annotations

import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatops import migrate
from chatops.db import make_engine
from chatops.events import Requester
from chatops.queue import Queue

TARGET = 5000


def chatops_rate(path: Path, n: int) -> float:
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    queue = Queue(engine)
    who = Requester(platform="console", user="bench", channel="bench")
    payload = {"kind": "report", "text": "ok"}
    start = time.perf_counter()
    for i in range(n):
        queue.enqueue("bench_noop", {"n": str(i)}, who, timeout=60, concurrency=10**6,
                      count_running=False)
        row = queue.claim("bench")
        queue.finish(row.id, "succeeded", exit_code=0, summary="succeeded", payload=payload)
    return n / (time.perf_counter() - start)


def sqlite_rate(path: Path, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, job_type TEXT, args TEXT, "
                 "state TEXT, start_after REAL, started_at REAL, finished_at REAL)")
    conn.execute("CREATE INDEX ix ON jobs (state, start_after, id)")
    start = time.perf_counter()
    for i in range(n):
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO jobs (job_type, args, state, start_after) VALUES (?,?,?,?)",
                     ("bench_noop", str(i), "queued", now))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        job_id = conn.execute(
            "UPDATE jobs SET state='running', started_at=? WHERE id = (SELECT id FROM jobs "
            "WHERE state='queued' AND start_after <= ? ORDER BY start_after, id LIMIT 1) "
            "RETURNING id", (now, now)).fetchone()[0]
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE jobs SET state='succeeded', finished_at=? WHERE id=?", (now, job_id))
        conn.execute("COMMIT")
    return n / (time.perf_counter() - start)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory() as tmp:
        ours = chatops_rate(Path(tmp) / "chatops.db", n)
        floor = sqlite_rate(Path(tmp) / "raw.db", n)
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    print(f"queue lifecycle (enqueue+claim+finish, {n} no-op jobs, SQLite WAL)")
    print(f"  chatops (SQLAlchemy): {ours:8.0f} jobs/s   target >= {TARGET}"
          f"   {'OK' if ours >= TARGET else 'BELOW TARGET'}")
    print(f"  plain sqlite3:        {floor:8.0f} jobs/s   (the physical limit here)")
    print(f"  ratio chatops/sqlite3: {ours / floor:.2f}")


if __name__ == "__main__":
    main()
