"""The writers of one process take turns on the database's write lock (chatops.db.make_engine):
a dropped connection must not leave that turn taken."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

from sqlalchemy import text

from chatops.db import make_engine


def test_a_connection_dropped_in_a_write_transaction_lets_the_next_writer_in(
        tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    dropped = engine.connect()
    dropped.execute(text("INSERT INTO t VALUES (1)"))  # a write transaction, never ended
    del dropped
    gc.collect()  # the pool rolls it back
    done = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    assert done.wait(10), "the next writer still waits for the dropped connection's turn"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalars().all() == [2]


def test_writers_of_many_threads_all_get_their_turn(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))

    def write(n: int) -> None:
        for i in range(20):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": n * 100 + i})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 160
