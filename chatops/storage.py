"""When the database cannot store: a full disk, a read-only or a damaged database.

``fault(exc)`` says whether an error is one of these (whatever wraps it: SQLAlchemy, or the
driver's own on the queue's hot path); ``setup_message`` is what a command says before it exits
3; ``Outage`` is how a long-running process lives through one: it logs the fault once, holds
what the admins must be told until it can be stored, and notices when writes work again.
"""

from __future__ import annotations

import logging
import os
import pwd
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from chatops.texts import clock, duration

log = logging.getLogger("chatops.storage")

FULL, READ_ONLY, DAMAGED = "disk full", "read-only", "damaged"
# SQLite's primary result codes (https://sqlite.org/rescode.html)
_SQLITE = {13: FULL, 8: READ_ONLY, 11: DAMAGED, 26: DAMAGED}
# PostgreSQL's SQLSTATEs: disk_full, read_only_sql_transaction, data/index_corrupted
_POSTGRES = {"53100": FULL, "25006": READ_ONLY, "XX001": DAMAGED, "XX002": DAMAGED}
MIN_FREE_BYTES = 64 * 1024  # less than this free next to a SQLite database: it is full


@dataclass(frozen=True)
class Fault:
    kind: str  # FULL, READ_ONLY or DAMAGED
    detail: str  # the database's own words

    @property
    def short(self) -> str:
        """What a person is told: 'disk full', 'the database is read-only', ..."""
        return self.kind if self.kind == FULL else f"the database is {self.kind}"


class NoRoom(Exception):
    """Refused before trying: the disk is (nearly) full (``low_space``)."""

    def __init__(self, found: Fault):
        super().__init__(f"{found.short}: {found.detail}")
        self.fault = found


def fault(exc: BaseException | None) -> Fault | None:
    """The storage fault behind ``exc`` (None: some other error)."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, NoRoom):
            return exc.fault
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in _SQLITE:
            return Fault(_SQLITE[code & 0xFF], str(exc))
        state = getattr(exc, "sqlstate", None)
        if isinstance(state, str) and state in _POSTGRES:
            return Fault(_POSTGRES[state], str(exc).strip().splitlines()[0])
        exc = getattr(exc, "orig", None) or exc.__cause__
        seen += 1
    return None


def database_name(url: str) -> str:
    """The SQLite file, or the PostgreSQL URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def setup_message(found: Fault, url: str) -> str:
    """One message naming the database and what to do (a command then exits 3)."""
    name = database_name(url)
    sqlite = make_url(url).get_backend_name() == "sqlite"
    if found.kind == DAMAGED:
        if not sqlite:
            return (f"the database {name} reports damaged data ({found.detail}): restore it "
                    "from your last pg_dump; `chatops db check` says more")
        return (f"the database file {name} is damaged ({found.detail}): stop chatops, move "
                f"the file aside and restore the last backup (`chatops db backup` makes them) "
                f"to {name}, or run `chatops db upgrade` to start an empty one; `chatops db "
                "check` says what is wrong")
    if found.kind == READ_ONLY:
        if not sqlite:
            return (f"the database {name} is read-only ({found.detail}): point "
                    "CHATOPS_DATABASE_URL at the primary server, or let its user write")
        return (f"the database file {name} is read-only for {_account()} "
                f"({found.detail}): make it, {name}-wal and {name}-shm writable by the account "
                f"chatops runs as (e.g. chown that account {name}*), on a file system mounted "
                "read-write; `chatops db check` says more")
    where = f" ({Path(name).parent})" if sqlite else " (the PostgreSQL server's data folder)"
    return (f"the disk holding the database {name} is full{where}: free some space there, "
            "then try again")


def _account() -> str:
    """Who this process runs as (not $USER: sudo and setpriv keep the caller's)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def check_writable_file(url: str) -> Fault | None:
    """A SQLite database file this account may not write (checked before it is used)."""
    if make_url(url).get_backend_name() != "sqlite":
        return None
    path = Path(database_name(url))
    if not path.exists() or os.access(path, os.W_OK):
        return None
    try:
        mounted_ro = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        mounted_ro = False
    return Fault(READ_ONLY, "on a file system mounted read-only" if mounted_ro
                 else "no write permission")


def database_folder(engine: Engine) -> str | None:
    """The folder holding a SQLite database file (None for PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return None
    return str(Path(engine.url.database or ".").parent)


def low_space(engine: Engine) -> Fault | None:
    """A SQLite database whose disk is (nearly) full: SQLite may still reuse the room its
    write-ahead log has, but the next write that needs more fails, and so do jobs' logs."""
    folder = database_folder(engine)
    return None if folder is None else SpaceWatch(folder).low_space()


class SpaceWatch:
    """``low_space`` of one folder, for a caller that asks before every write (the queue,
    before every enqueue): with plenty free, the next look is due a second later rather than
    one statvfs per job. A disk that fills faster than that fails the write itself, which
    ``fault`` reads as full."""

    PLENTY_BYTES = 256 * 2**20
    LOOK_AGAIN_AFTER = 1.0  # seconds, while there is plenty

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._next_look = 0.0

    def low_space(self) -> Fault | None:
        now = time.monotonic()
        if now < self._next_look:
            return None
        try:
            found = os.statvfs(self.folder)
        except OSError:
            return None  # the next write says what is wrong
        free = found.f_bavail * found.f_frsize  # what shutil.disk_usage calls free
        if free >= self.PLENTY_BYTES:
            self._next_look = now + self.LOOK_AGAIN_AFTER
        if free < MIN_FREE_BYTES:
            return Fault(FULL, f"{free // 1024} kB free in {self.folder}")
        return None


def probe(engine: Engine) -> Fault | None:
    """Whether the database can take a write now: the free space next to a SQLite file, and a
    table made in a transaction that is rolled back (it fails on a read-only database)."""
    found = low_space(engine) or check_writable_file(
        engine.url.render_as_string(hide_password=False))  # (an open file still takes writes)
    if found is not None:
        return found
    try:
        with engine.connect() as conn:
            transaction = conn.begin()  # SQLite: BEGIN IMMEDIATE, the write lock
            try:
                conn.execute(text("CREATE TABLE chatops_write_probe (x INTEGER)"))
            finally:
                transaction.rollback()
    except Exception as exc:
        found = fault(exc)
        if found is None:
            raise
        return found
    return None


class Outage:
    """What a process does while its writes fail for lack of storage.

    ``failed(exc)`` records a fault (logged once, loudly) and says whether it was one;
    ``recovered()``, after a write that worked, ends it and holds the notice for the admins;
    ``flush(store)`` stores the held notices (they stay held while storing fails).
    """

    def __init__(self, who: str, meanwhile: tuple[str, str]):
        self.who = who  # e.g. "chatops dispatcher"
        self.meanwhile = meanwhile  # e.g. ("no new jobs are started", "no new job was started")
        self.current: Fault | None = None
        self.since: float | None = None
        self.held: list[str] = []

    @property
    def blocked(self) -> bool:
        return self.current is not None

    def failed(self, exc: BaseException) -> bool:
        found = fault(exc)
        if found is None:
            return False
        self.note(found)
        return True

    def note(self, found: Fault) -> None:
        if self.current is None:
            self.current, self.since = found, time.time()
            log.error("%s on %s cannot write to the database: %s (%s); %s until it can; "
                      "the admins are told once it can", self.who, socket.gethostname(),
                      found.short, found.detail, self.meanwhile[0])

    def recovered(self) -> None:
        """A write worked: the outage (if any) is over; its notice is held for ``flush``."""
        if self.current is None:
            return
        found, since = self.current, self.since or time.time()
        self.current = self.since = None
        took = duration(time.time() - since)
        log.warning("%s can write to the database again (%s for %s)", self.who, found.short,
                    took)
        self.held.append(
            f"{self.who} on {socket.gethostname()} could not write to the database from "
            f"{clock(since)} for {took} ({found.short}: {found.detail}); {self.meanwhile[1]} "
            "meanwhile. It writes again and has resumed by itself.")

    def flush(self, store: Callable[[str], object]) -> None:
        while self.held:
            try:
                store(self.held[0])
            except Exception as exc:
                if self.failed(exc):
                    return  # held until the next time
                log.exception("could not tell the admins: %s", self.held[0])
            self.held.pop(0)
