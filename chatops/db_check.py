"""``chatops db check``: is the queue database sound, at the newest schema, and writable?

SQLite: ``PRAGMA integrity_check`` on the file; PostgreSQL: the connection and the server. Both:
the schema's migration against the newest one, and a write that is rolled back
(chatops/storage.py ``probe``). Every line says what was found; a problem says what to do.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from chatops import migrate, storage
from chatops.db import make_engine
from chatops.texts import size

SHOWN_PROBLEMS = 5  # of integrity_check's lines


def check(url: str) -> tuple[list[str], bool]:
    """The lines to print, and whether everything is fine."""
    name = storage.database_name(url)
    sqlite = make_url(url).get_backend_name() == "sqlite"
    lines: list[str] = []
    if sqlite:
        path = Path(name)
        if not path.exists():
            return [f"database: {name} does not exist: run `chatops db upgrade` to create it"], \
                False
        lines.append(f"database: {name} (SQLite, {size(path.stat().st_size)})")
        problems = _integrity(path)
        if problems:
            lines.append(f"integrity: damaged ({len(problems)} problem(s) found)")
            lines += [f"  {line}" for line in problems[:SHOWN_PROBLEMS]]
            lines.append("what to do: " + storage.setup_message(
                storage.Fault(storage.DAMAGED, problems[0]), url))
            return lines, False
        lines.append("integrity: ok")
    engine = make_engine(url)
    try:
        return _schema_and_writes(engine, url, lines, sqlite)
    finally:
        engine.dispose()


def _integrity(path: Path) -> list[str]:
    """integrity_check's findings (none: sound)."""
    try:
        conn = sqlite3.connect(path, timeout=30)
        try:
            found = [row[0] for row in conn.execute("PRAGMA integrity_check(100)")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:  # not even a database
        return [str(exc)]
    return [] if found == ["ok"] else found


def _schema_and_writes(engine, url: str, lines: list[str], sqlite: bool
                       ) -> tuple[list[str], bool]:
    name = storage.database_name(url)
    try:
        if not sqlite:
            with engine.connect() as conn:
                version = conn.execute(text("SHOW server_version")).scalar()
                standby = conn.execute(text("SELECT pg_is_in_recovery()")).scalar()
            lines.append(f"database: {name} (PostgreSQL {version}"
                         f"{', a standby' if standby else ''}): connected")
        current, head = migrate.current_revision(engine), migrate.head_revision(engine)
    except DBAPIError as exc:
        found = storage.fault(exc)
        if found is not None:
            lines.append(f"problem: {storage.setup_message(found, url)}")
        else:
            lines.append(f"connection: cannot connect to {name}: {str(exc.orig).strip()} (is the "
                         "server running, and are the host, user and password in "
                         "CHATOPS_DATABASE_URL right?)")
        return lines, False
    ok = current == head
    if current is None:
        lines.append(f"schema: none: run `chatops db upgrade` to create it (newest {head})")
    elif ok:
        lines.append(f"schema: {current} (the newest)")
    else:
        lines.append(f"schema: {current}, the newest is {head}: run `chatops db upgrade`")
    found = storage.check_writable_file(url) or storage.probe(engine)
    if found is None:
        lines.append("writable: yes")
    else:
        ok = False
        lines.append(f"writable: no ({found.short}): {storage.setup_message(found, url)}")
    return lines, ok
