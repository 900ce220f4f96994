"""A private CHATOPS_HOME with a migrated SQLite queue, for the calculations' in-process tests."""

from __future__ import annotations

from pathlib import Path

from chatops import migrate
from chatops.db import make_engine
from chatops.queue import Queue
from chatops.settings import Settings, load_settings


def local_queue(home: Path) -> tuple[Settings, Queue]:
    settings = load_settings({"CHATOPS_HOME": str(home), "PATH": "/usr/bin",
                              "CHATOPS_RUN_DIR": str(home / "run")})
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    return settings, Queue(engine)
