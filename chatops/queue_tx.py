"""How the queue talks to its database: one connection per thread, kept open; writing
transactions (on SQLite ``BEGIN IMMEDIATE``, after this process's other writers: see
``chatops.sqlite_engine``) and read-only ones that never wait for the write lock; ``atomic``
blocks that the others join; and the hot path's transaction, straight on the driver connection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from chatops.db import READ_ONLY
from chatops.sqlite_engine import begin_writing, writers_lock


class _ThreadState(threading.local):
    """What one thread holds: its connection, and the transaction of an ``atomic`` block
    (defaults on the class: no getattr with a default, which raises inside when the attribute
    is missing, three times a job)."""

    conn: Connection | None = None
    raw: Any = None  # conn's driver connection, for the hot path (None: find it again)
    atomic: Connection | None = None


class Transactions:
    """The transactions of one ``Queue``, per thread."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._local = _ThreadState()
        self._write_lock = writers_lock(engine)  # SQLite: this process's writers take turns

    @contextmanager
    def atomic(self) -> Iterator[Connection]:
        """One writing transaction that every other one of this thread joins until it ends."""
        outer = self._local.atomic
        if outer is not None:  # nested: part of the enclosing one
            yield outer
            return
        with self.begin() as conn:
            self._local.atomic = conn
            try:
                yield conn
            finally:
                self._local.atomic = None

    def connection(self) -> Connection:
        """This thread's own connection, kept open: checkouts cost more than the statements."""
        conn = self._local.conn
        if conn is None or conn.closed:
            conn = self._local.conn = self.engine.connect()
            self._local.raw = None
        if conn.in_transaction():  # a previous caller failed mid-way
            conn.rollback()
        return conn

    def release(self) -> None:
        """Give this thread's connection back to the pool."""
        conn = self._local.conn
        if conn is not None:
            self._local.conn = self._local.raw = None
            conn.close()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction that writes (on SQLite: BEGIN IMMEDIATE, see chatops.db)."""
        outer = self._local.atomic
        if outer is not None:
            yield outer
            return
        with self.connection().begin() as transaction:
            yield transaction.connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction: it never takes (or waits for) the write lock."""
        outer = self._local.atomic
        if outer is not None:  # reads inside ``atomic`` see its writes
            yield outer
            return
        conn = self.connection()
        conn.execution_options(**{READ_ONLY: True})
        try:
            with conn.begin():
                yield conn
        finally:
            conn.execution_options(**{READ_ONLY: False})

    def hot(self) -> _Hot:
        """A writing transaction straight on the driver connection, for the hot path."""
        return _Hot(self)


class _Hot:
    """``Transactions.hot``: BEGIN (IMMEDIATE on SQLite) on this thread's driver connection,
    COMMIT at the end, ROLLBACK on any error (a failed COMMIT too: a full disk must not leave it
    open); inside ``atomic`` the enclosing transaction's. A class, not a generator: it runs
    three times a job."""

    __slots__ = ("tx", "raw")

    def __init__(self, tx: Transactions):
        self.tx = tx

    def __enter__(self) -> Any:
        tx = self.tx
        local = tx._local  # (one thread-local lookup, not three)
        outer = local.atomic
        if outer is not None:  # the statements join the enclosing transaction
            self.raw = None
            return outer.connection.driver_connection
        raw = local.raw
        if raw is None or local.conn.invalidated:  # (a lost connection is replaced)
            raw = local.raw = tx.connection().connection.driver_connection
        if not tx.is_postgres:
            begin_writing(tx._write_lock, raw)  # take the write lock now (see chatops.db)
        self.raw = raw
        return raw

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        raw = self.raw
        if raw is None:  # inside ``atomic``: the enclosing transaction ends
            return
        lock = self.tx._write_lock
        try:
            if kind is not None:
                raw.rollback()
                return
            try:
                raw.commit()
            except BaseException:
                raw.rollback()
                raise
        finally:
            if lock is not None:
                lock.release()  # this process's next writer may begin
