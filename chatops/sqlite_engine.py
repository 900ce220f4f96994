"""How this service opens a SQLite database and writes to it: WAL, small pages for a new file,
a busy timeout, and the writers of one process taking turns before ``BEGIN IMMEDIATE``
(``chatops.db.make_engine`` uses it; ``Queue``'s hot path calls ``begin_writing`` itself)."""

from __future__ import annotations

import sqlite3
import threading
import weakref
from typing import Any

from sqlalchemy import Engine, create_engine, event

NEW_PAGE_SIZE = 1024  # bytes, for a new SQLite database
WAL_CHECKPOINT_BYTES = 16 * 2**20  # SQLite checkpoints when its write-ahead log is this long

# On SQLite the writers of one process queue for the database's write lock on a lock of their
# own: SQLite's busy handler makes a waiting writer sleep (up to 100 ms at a time) and lets a
# newcomer overtake it, which under a burst of writers made some wait seconds. Writers of other
# processes still meet at SQLite's lock (busy_timeout).
_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_HOLDS = "chatops_write_lock"
WRITE_WAIT = 30.0  # as SQLite's busy_timeout: then "database is locked", not a hang


def writers_lock(engine: Engine) -> threading.Lock | None:
    """The turn lock of a SQLite engine's writers in this process (None: not SQLite)."""
    return _WRITERS.get(engine)


def begin_writing(lock: threading.Lock | None, raw: Any) -> None:
    """``BEGIN IMMEDIATE`` on a SQLite driver connection, after this process's other writers
    (``lock``: ``writers_lock(engine)``); the caller releases ``lock`` when the transaction
    ends."""
    if lock is not None and not lock.acquire(timeout=WRITE_WAIT):
        raise sqlite3.OperationalError("database is locked (by this process's writers)")
    try:
        raw.execute("BEGIN IMMEDIATE")
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def sqlite_engine(url: str, read_only_option: str) -> Engine:
    """An engine whose transactions take the write lock up front, except those run with the
    execution option ``read_only_option`` (``chatops.db.reading``)."""
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        # A new database gets small pages (an existing one keeps its own; DEPLOY.md says
        # how to change it): a commit writes every page it touched into the WAL whole,
        # and a job's three touch ≈12 (rows and partial indexes), so 1 KiB pages write and
        # checkpoint a quarter of the bytes 4 KiB ones do (docs/benchmarks.md).
        cursor.execute(f"PRAGMA page_size={NEW_PAGE_SIZE}")  # (only an empty file)
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode across crashes
        # Checkpoint (and fsync the database file) every ~16 MB of WAL, not every 4 MB.
        page = cursor.execute("PRAGMA page_size").fetchone()[0]
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_BYTES // page}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    lock = _WRITERS[engine] = threading.Lock()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn):
        # A writer takes the write lock up front (IMMEDIATE): no deadlock upgrading a read
        # to a write. A reader (see ``reading``) begins deferred and never waits for writers.
        # Issued on the driver connection directly: this runs for every transaction.
        if conn.get_execution_options().get(read_only_option, False):
            conn.connection.driver_connection.execute("BEGIN")
            return
        begin_writing(lock, conn.connection.driver_connection)
        conn.info[_HOLDS] = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _sqlite_end(conn):
        if conn.info.pop(_HOLDS, False):
            lock.release()

    @event.listens_for(engine.pool, "reset")
    def _sqlite_reset(_dbapi_conn, record, _state):
        # A connection dropped in a transaction (never committed or rolled back, e.g.
        # garbage-collected) is rolled back by the pool without the events above: the
        # process's writers must not wait on it forever.
        if record.info.pop(_HOLDS, False):
            lock.release()

    return engine
