"""Wiring shared by every process: settings, config, database, queue — with clear failures."""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from chatops import migrate
from chatops.db import make_engine
from chatops.job_config import Config, ConfigError, load_config
from chatops.queue import Queue
from chatops.settings import Settings, load_settings

SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PRIVATE_KEY|API_KEY)", re.I)

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
    try:
        config = load_config(settings.config_path)
    except ConfigError as exc:
        raise SetupError(f"job_configs has errors ({settings.config_path}):\n{exc}\n"
                         f"Check it with: chatops config check {settings.config_path}") from exc
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


class RedactSecrets(logging.Filter):
    """Replace the values of secret settings in every log record, whatever logged them."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def setup_logging(settings: Settings) -> None:
    level = settings.environ.get("CHATOPS_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets([v for k, v in settings.environ.items()
                                     if SECRET_NAME.search(k) and v]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
