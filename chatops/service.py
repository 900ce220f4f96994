"""Wiring shared by every process: settings, config, database, queue — with clear failures."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from chatops import migrate, redact
from chatops.db import make_engine
from chatops.job_config import Config, ConfigError, load_config
from chatops.queue import Queue
from chatops.settings import Settings, load_settings

EXIT_FAILED = 1  # what was asked for failed (a job failed, a config has errors)
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3  # no database, unreadable config: fix the setup
EXIT_NOT_FOUND = 4  # no such job


class SetupError(Exception):
    """Something about the installation is wrong; the message says what to do."""


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
    return Service(settings, config, open_queue(settings, need_schema=need_schema))


def open_queue(settings: Settings, *, need_schema: bool = True) -> Queue:
    if settings.is_sqlite:
        settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    if need_schema:
        try:
            current = migrate.is_current(engine)
        except OperationalError as exc:
            raise SetupError(f"cannot reach the database {engine.url!r}: {exc.orig}") from exc
        if not current:
            raise SetupError(f"the database {engine.url!r} is missing or not up to date: "
                             "run `chatops db upgrade` first")
    return Queue(engine)


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
