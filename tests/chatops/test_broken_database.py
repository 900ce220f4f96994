"""A broken database file (random bytes, truncated, bad pages, a bad header, read-only): every
command says which file and what to do, and exits 3; `chatops db check` finds it; /healthz says
a read-only database cannot be written (issue 13, item 6)."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chatops import migrate
from chatops.db import make_engine
from chatops.db_check import check
from tests.chatops.test_setup_errors import NEED_SCHEMA, base_env
from tests.support.cli import CHATOPS, Chatops
from tests.support.require import require
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # many short processes

SERVICE = "chatops-svc"
AS_SERVICE = ("setpriv", f"--reuid={SERVICE}", f"--regid={SERVICE}", "--clear-groups")
EVERY_DB_COMMAND = [*NEED_SCHEMA, ("db", "upgrade"), ("db", "check")]
SOME_COMMANDS = [("jobs", "list"), ("chat", "tests echo hi"), ("db", "upgrade"),
                 next(args for args in NEED_SCHEMA if args[0] == "run")]


def refused_by_every_command(env: dict[str, str], says: str, prefix: tuple[str, ...] = (),
                             commands: list[tuple[str, ...]] | None = None) -> None:
    """Each command that opens the database exits 3 with ``says`` on stderr, no traceback."""
    def one(args: tuple[str, ...]) -> str | None:
        done = subprocess.run([*prefix, CHATOPS, *args], env=env, capture_output=True,
                              text=True, timeout=90, stdin=subprocess.DEVNULL)
        if (done.returncode, done.stderr.strip()) == (3, says):
            return None
        return f"chatops {' '.join(args)}: exit {done.returncode}:\n{done.stdout}{done.stderr}"

    if commands is None:
        commands = [args for args in EVERY_DB_COMMAND if args != ("db", "check")]
    with ThreadPoolExecutor(4) as pool:
        failures = [f for f in pool.map(one, commands) if f]
    assert not failures, "\n".join(failures)


def damaged(db: Path, detail: str) -> str:
    return (f"chatops: the database file {db} is damaged ({detail}): stop chatops, move the "
            f"file aside and restore the last backup (`chatops db backup` makes them) to {db}, "
            "or run `chatops db upgrade` to start an empty one; `chatops db check` says what "
            "is wrong")


def read_only(db: Path, user: str) -> str:
    return (f"the database file {db} is read-only for {user} (no write permission): make it, "
            f"{db}-wal and {db}-shm writable by the account chatops runs as (e.g. chown that "
            f"account {db}*), on a file system mounted read-write; `chatops db check` says more")


@pytest.fixture(scope="module")
def good_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with a few jobs, checkpointed into one file."""
    home = tmp_path_factory.mktemp("good") / "home"
    chatops = Chatops(home, base_env(home))
    chatops("db", "upgrade", check=True)
    for n in range(3):
        chatops.chat(f"tests echo job {n}", "--no-wait")
    copy = home.parent / "good.db"
    with sqlite3.connect(home / "chatops.db") as source, sqlite3.connect(copy) as target:
        source.backup(target)
    return copy


def broken_home(tmp_path: Path, good_db: Path, how: str) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    data = bytearray(good_db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    if how == "random bytes":
        data = bytearray(os.urandom(len(data)))
    elif how == "truncated":
        data = data[:len(data) // 2]
    elif how == "bad pages":  # every page but the first (the schema) overwritten
        data[page:] = os.urandom(len(data) - page)
    elif how == "bad header":
        data[:100] = os.urandom(100)
    (home / "chatops.db").write_bytes(data)
    return home


@pytest.mark.parametrize(("how", "detail"), [
    ("random bytes", "file is not a database"),
    ("truncated", "database disk image is malformed"),
    ("bad pages", "database disk image is malformed"),
    ("bad header", "file is not a database"),
])
def test_every_command_names_a_damaged_database_and_exits_3(tmp_path, good_db, how, detail):
    home = broken_home(tmp_path, good_db, how)
    db = home / "chatops.db"
    # Every command for one kind of damage; for the others a reader, a writer and the service.
    refused_by_every_command(base_env(home), damaged(db, detail), commands=None
                             if how == "random bytes" else SOME_COMMANDS)
    checked = subprocess.run([CHATOPS, "db", "check"], env=base_env(home), capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 3, checked.stderr
    lines = checked.stdout.splitlines()
    assert lines[0] == f"database: {db} (SQLite, {db.stat().st_size // 1024} KiB)"
    assert lines[1].startswith("integrity: damaged (")
    assert lines[-1] == "what to do: " + damaged(db, lines[2].strip()).removeprefix("chatops: ")


def test_db_check_finds_a_bad_page_no_command_reads(tmp_path, good_db):
    home = tmp_path / "home"
    home.mkdir()
    data = bytearray(good_db.read_bytes())
    data[-4096:] = os.urandom(4096)  # the last page only
    (home / "chatops.db").write_bytes(data)
    checked = subprocess.run([CHATOPS, "db", "check"], env=base_env(home), capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 3
    assert checked.stdout.splitlines()[1].startswith("integrity: damaged (")


def test_db_check_of_a_sound_database(tmp_path, good_db):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(good_db, home / "chatops.db")
    checked = subprocess.run([CHATOPS, "db", "check"], env=base_env(home), capture_output=True,
                             text=True, timeout=60)
    db = home / "chatops.db"
    head = migrate.head_revision(make_engine(f"sqlite:///{db}"))
    assert (checked.returncode, checked.stdout.splitlines()) == (0, [
        f"database: {db} (SQLite, {db.stat().st_size // 1024} KiB)", "integrity: ok",
        f"schema: {head} (the newest)", "writable: yes"])


def test_db_check_on_postgresql(pg_url):
    engine = make_engine(pg_url)
    head = migrate.head_revision(engine)
    lines, ok = check(pg_url)
    assert not ok and lines[1:] == [
        f"schema: none: run `chatops db upgrade` to create it (newest {head})", "writable: yes"]
    assert re.fullmatch(r"database: postgresql://\S+ \(PostgreSQL [\d.]+.*\): connected",
                        lines[0])
    migrate.upgrade(engine)
    engine.dispose()
    lines, ok = check(pg_url)
    assert ok and lines[1:] == [f"schema: {head} (the newest)", "writable: yes"]


# -- a read-only database file (the service account may not write it) -------------------------

@pytest.fixture
def service_home() -> Iterator[Path]:
    try:
        pwd.getpwnam(SERVICE)
    except KeyError:
        require(False, f"the account {SERVICE}", "scripts/test-setup.sh")
    require(os.geteuid() == 0, "root (to run chatops as the service account)")
    path = Path(tempfile.mkdtemp(prefix="chatops-ro-"))
    path.chmod(0o755)
    yield path / "home"
    shutil.rmtree(path, ignore_errors=True)


def as_service(home: Path) -> Chatops:
    env = base_env(home, CHATOPS_RUN_DIR=str(home / "run"), CHATOPS_WEB_TOKEN="t" * 32)
    return Chatops(home, env, AS_SERVICE)


def test_a_read_only_database_is_named_by_every_command(service_home, good_db):
    service_home.mkdir()
    db = service_home / "chatops.db"
    shutil.copy(good_db, db)
    uid = pwd.getpwnam(SERVICE).pw_uid
    for path in (service_home, db):
        os.chown(path, uid, uid)
    db.chmod(0o444)
    chatops = as_service(service_home)
    refused_by_every_command(chatops.env, f"chatops: {read_only(db, SERVICE)}", AS_SERVICE)
    checked = chatops("db", "check")
    assert checked.returncode == 3
    assert checked.stdout.splitlines()[-1] == (
        f"writable: no (the database is read-only): {read_only(db, SERVICE)}")


def healthz(base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_healthz_says_a_database_made_read_only_cannot_be_written(service_home):
    chatops = as_service(service_home)
    service_home.mkdir()
    os.chown(service_home, *(pwd.getpwnam(SERVICE)[2:4]))
    chatops("db", "upgrade", check=True)
    try:
        chatops.start("web", "--port", "0")
        log = service_home / "web-0.log"
        base = wait_until(lambda: re.search(r"web: (http://127\.0\.0\.1:\d+)/", log.read_text()),
                          timeout=60, what="chatops web to listen").group(1)
        assert healthz(base)[1]["checks"]["database"] == "ok"
        (service_home / "chatops.db").chmod(0o444)
        status, body = healthz(base)
        assert (status, body["checks"]["database"]) == (
            503, "cannot write (the database is read-only)")
        wait_until(lambda: "/healthz: the database cannot write (the database is read-only)"
                   in log.read_text(), what="the web server to log it")
    finally:
        chatops.stop_all()
