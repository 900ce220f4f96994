"""Wiring shared by every process: settings, config, database, queue — with clear failures."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError

from chatops import migrate, redact, storage
from chatops.config_loader import ConfigError, load_config
from chatops.db import make_engine
from chatops.job_config import Config
from chatops.queue import Queue
from chatops.settings import Settings, SetupError, load_settings

log = logging.getLogger("chatops")

EXIT_FAILED = 1  # what was asked for failed (a job failed, a config has errors)
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3  # no database, unreadable config: fix the setup
EXIT_NOT_FOUND = 4  # no such job


@dataclass
class Service:
    settings: Settings
    config: Config
    queue: Queue


def open_service(settings: Settings | None = None, *, need_schema: bool = True) -> Service:
    settings = settings or load_settings()
    redact.install(settings)  # before anything can log or store a secret
    try:
        config = load_config(settings.config_path)
    except ConfigError as exc:
        raise SetupError(f"job_configs has errors ({settings.config_path}):\n{exc}\n"
                         f"Check it with: chatops config check {settings.config_path}") from exc
    redact.install(settings, config)  # and the variables the config names as secret
    for warning in config.warnings:
        log.warning("%s: %s", settings.config_path, warning)
    return Service(settings, config, open_queue(settings, need_schema=need_schema))


def open_queue(settings: Settings, *, need_schema: bool = True) -> Queue:
    """The queue on the configured database: reachable, and at the newest migration unless
    ``need_schema`` is false (``chatops db upgrade``); else a SetupError saying what to do."""
    engine = open_engine(settings)
    read_only = storage.check_writable_file(settings.database_url)
    if read_only is not None:
        raise SetupError(storage.setup_message(read_only, settings.database_url))
    try:
        current = migrate.is_current(engine)
    except DBAPIError as exc:
        found = storage.fault(exc)
        if found is not None:
            raise SetupError(storage.setup_message(found, settings.database_url)) from None
        hint = ("is CHATOPS_HOME writable by this user?" if settings.is_sqlite else
                "is the server running, and are the host, user and password in "
                "CHATOPS_DATABASE_URL right?")
        raise SetupError(f"cannot reach the database {engine.url!r}: "
                         f"{str(exc.orig).strip()} ({hint})") from None
    if need_schema and not current:
        raise SetupError(f"the database {engine.url!r} is missing or not up to date: "
                         "run `chatops db upgrade` first")
    return Queue(engine)


def open_engine(settings: Settings) -> Engine:
    if settings.is_sqlite:
        try:
            settings.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SetupError(f"CHATOPS_HOME ({settings.home}) cannot be created: "
                             f"{exc.strerror}") from None
    try:
        return make_engine(settings.database_url)
    except (ArgumentError, ImportError) as exc:  # NoSuchModuleError is an ArgumentError
        raise SetupError(f"CHATOPS_DATABASE_URL is not a database chatops can use ({exc}): "
                         "use postgresql://USER@HOST/DATABASE, or leave it unset for SQLite "
                         "in CHATOPS_HOME") from None


FOLDERS = {"CHATOPS_LOGS_DIR": "logs_dir", "CHATOPS_RUN_DIR": "run_dir",
           "CHATOPS_SPOOL_DIR": "spool_dir", "CHATOPS_WRITEABLE_DIR": "writeable_dir"}


def ensure_dirs(settings: Settings, *names: str) -> None:
    """Make the folders a process writes to (by setting name; all of them by default), or say
    which one it cannot use."""
    for name in names or FOLDERS:
        path = getattr(settings, FOLDERS[name])
        try:
            path.mkdir(mode=0o700 if name == "CHATOPS_RUN_DIR" else 0o777, parents=True,
                       exist_ok=True)
            if not os.access(path, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied")
        except OSError as exc:
            raise SetupError(f"{name} ({path}) cannot be used: {exc.strerror}; make it "
                             "writable by the account chatops runs as") from None


def setup_logging(settings: Settings) -> None:
    """One handler on stderr; every line, tracebacks included, passes through redaction."""
    redact.install(settings)
    level = settings.environ.get("CHATOPS_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(redact.RedactingFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
