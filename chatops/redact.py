"""Secrets never reach a log, a report, an error page or the database: one list of them, and
one filter every log handler and every stored text passes through.

The list is read from the settings object, so a secret counts whatever its source (the
environment or a credential file): the settings named in ``SECRET_SETTINGS``, any setting whose
name says it is one (``…TOKEN``, ``…SECRET``, ``…PASSWORD``, ``…PASSPHRASE``, ``…API_KEY``), the
password in any ``…_URL``, the path of a webhook URL (the path is the secret), and the variables
job_configs.py names as secret (a cluster's ``key_passphrase_env``, the Teams
``webhook_url_env``, a monitor's ``discord_webhook:`` variables). Values derived at run
time — the Telegram webhook's secret token, a generated web login token — are added where they
are made, with ``protect``.

Every process calls ``install`` when it opens the service (chatops/service.py); logging,
the queue's writes and the web server's error pages then use ``redact``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from chatops import json_text

if TYPE_CHECKING:
    from chatops.job_config import Config
    from chatops.settings import Settings

MASK = "***"
MIN_LENGTH = 6  # shorter values would mask ordinary words; no real secret is this short

# Settings that are secrets, and how: "value" (all of it), "url-password" (a URL whose
# password is the secret), "url-path" (a URL whose path is the secret: webhooks).
SECRET_SETTINGS: dict[str, str] = {
    "SLACK_BOT_TOKEN": "value",
    "SLACK_APP_TOKEN": "value",
    "SLACK_SIGNING_SECRET": "value",
    "TELEGRAM_BOT_TOKEN": "value",
    "TELEGRAM_WEBHOOK_SECRET": "value",
    "TELEGRAM_WEBHOOK_URL": "url-path",
    "DISCORD_BOT_TOKEN": "value",
    "DISCORD_WEBHOOK_URL": "url-path",
    "MATRIX_ACCESS_TOKEN": "value",
    "MATRIX_PASSWORD": "value",
    "GITHUB_WEBHOOK_SECRET": "value",
    "CHATOPS_EVENTS_TOKEN": "value",
    "CHATOPS_WEB_TOKEN": "value",
    "CHATOPS_WEB_PASSWORD": "value",
    "CHATOPS_WEB_SECRET_KEY": "value",
    "CHATOPS_METRICS_TOKEN": "value",
    "CHATOPS_SMTP_PASSWORD": "value",
    "CHATOPS_DATABASE_URL": "url-password",
    "CHATOPS_TEAMS_WEBHOOK_URL": "url-path",
    "CHATOPS_RESULTS_WEBDAV_URL": "url-password",  # a WebDAV folder for results (calc/webdav.py)
}
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSPHRASE|PRIVATE_KEY|API_KEY|CREDENTIAL",
                         re.I)
WEBHOOK_URL = re.compile(r"WEBHOOK.*_URL$", re.I)


def _kind(name: str) -> str | None:
    if name in SECRET_SETTINGS:
        return SECRET_SETTINGS[name]
    if WEBHOOK_URL.search(name):
        return "url-path"
    if name.upper().endswith("_URL"):
        return "url-password"
    return "value" if SECRET_NAME.search(name) else None


def is_secret_name(name: str) -> bool:
    """Whether a setting of this name holds a secret (or a URL that may hold one)."""
    return _kind(name) is not None


def _parts(kind: str, value: str) -> list[str]:
    """The secret parts of one setting's value."""
    if kind == "value":
        return [value]
    try:
        url = urlsplit(value)
    except ValueError:
        return [value]
    parts = []
    if url.password:
        parts += [url.password, unquote(url.password)]
    if kind == "url-path":
        parts.append(value)
        path = url.path.rstrip("/")
        parts.append(path)  # as a request line or "Exception on <path>" shows it
        parts += [segment for segment in path.split("/") if len(segment) >= 16]
    return parts


def secret_values(settings: Settings, config: Config | None = None) -> set[str]:
    """Every secret the settings hold (and the ones job_configs.py names)."""
    named: dict[str, str] = {}
    if config is not None:
        for cluster in config.clusters.values():
            for name in (cluster.key_passphrase_env, cluster.password_env):
                if name:
                    named[name] = "value"
        for monitor in config.monitors.values():
            for name in monitor.webhook_variables:  # a Discord webhook URL: its path is secret
                named[name] = "url-path"
        teams = (config.notifications.get("msteams") or {}) if isinstance(
            config.notifications, Mapping) else {}
        if isinstance(teams, Mapping) and teams.get("webhook_url_env"):
            named[str(teams["webhook_url_env"])] = "url-path"
    found: set[str] = set()
    for name, value in settings.named_values():
        kind = named.get(name) or _kind(name)
        if kind and value:
            found.update(p for p in _parts(kind, value) if len(p) >= MIN_LENGTH)
    return found


class Redactor:
    """Replaces every known secret (and its URL-encoded form) with ``***``."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        # Whether masking a JSON text stays inside its strings (``json``): no secret holds a
        # quote or a backslash, so no match can take in the quote that ends a string.
        self._json_safe = True
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        values = [value for value in values if value and len(value) >= MIN_LENGTH]
        new = {v for value in values
               for v in (value, quote(value, safe=""), json.dumps(value)[1:-1])}
        with self._lock:
            if new <= self._values:
                return
            self._values |= new
            self._json_safe = self._json_safe and not any('"' in v or "\\" in v
                                                           for v in values)
            # Longest first: a secret that contains another is masked whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def json(self, value: Any) -> str:
        """A JSON-able value as JSON text, every secret in its strings masked.

        The text is masked at once (each secret's JSON-escaped form is known too, and JSON
        escapes character by character, so a string holding a secret shows it whole); each
        string is masked on its own instead when a secret could span a string's end, or if a
        mask broke the text (a match that began inside an escape)."""
        text = json_text.dumps(value)
        pattern = self._pattern
        if pattern is None:
            return text
        if self._json_safe:
            masked = pattern.sub(MASK, text)
            if masked == text:
                return text
            try:
                json.loads(masked)
                return masked
            except ValueError:
                pass
        return json_text.dumps(self.payload(value))

    def payload(self, value: Any) -> Any:
        """A JSON-able value with every string redacted."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, Mapping):
            return {k: self.payload(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.payload(v) for v in value]
        return value


_redactor = Redactor()


def install(settings: Settings, config: Config | None = None) -> None:
    """Learn this process's secrets (called when the service is opened)."""
    _redactor.add(secret_values(settings, config))


def protect(*values: str | None) -> None:
    """Add secrets derived at run time."""
    _redactor.add(v for v in values if v)


def redact(text: str) -> str:
    return _redactor(text)


def redacted_json(payload: Any) -> str:
    """``payload`` as JSON text with every secret masked, for the database."""
    return _redactor.json(payload)


class RedactingFormatter(logging.Formatter):
    """Formats a record — message, arguments, traceback — then masks the secrets in it."""

    def __init__(self, fmt: str | None = None, redactor: Redactor | None = None) -> None:
        super().__init__(fmt)
        self.redactor = redactor or _redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))
