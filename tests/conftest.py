"""Shared fixtures: a private CHATOPS_HOME with the real `chatops` command, a dispatcher
running, a fresh PostgreSQL database."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import PG_ADMIN_URL, Chatops, spine_env
from tests.support.require import require


@pytest.fixture
def chatops(tmp_path: Path) -> Iterator[Chatops]:
    home = tmp_path / "home"
    home.mkdir()
    runner = Chatops(home, spine_env(home))
    runner("db", "upgrade", check=True)
    yield runner
    runner.stop_all()


@pytest.fixture
def running(chatops: Chatops) -> Chatops:
    """chatops with a dispatcher running."""
    chatops.start_dispatcher()
    return chatops


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        require(False, f"PostgreSQL at {PG_ADMIN_URL}")
    name = f"chatops_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "scratch"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)
