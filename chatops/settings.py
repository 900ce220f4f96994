"""Settings: read once from the environment into one typed object.

Names follow the design: ``CHATOPS_*`` for the service itself, each platform's usual names for
its credentials. Secrets are kept here only so the parts that need them can reach them; the
dispatcher never passes any of them to a job (see ``dispatcher/local.py``), and
chatops/redact.py keeps them out of logs, reports and the database.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Settings read by one part each, checked here so that every process refuses a wrong value at
# start instead of failing later: name -> (kind, smallest value).
NUMBERS: dict[str, tuple[type, float]] = {
    "CHATOPS_MAX_CONCURRENCY": (int, 1),
    "CHATOPS_KILL_GRACE_SECONDS": (float, 0),
    "CHATOPS_POLL_INTERVAL": (float, 0.01),
    "CHATOPS_DELIVERY_ATTEMPTS": (int, 1),
    "CHATOPS_SMTP_PORT": (int, 1),
    "CHATOPS_FABFILE_TIMEOUT": (float, 0.1),
    "CHATOPS_REMOTE_LOG_LIMIT": (int, 1),
    "CHATOPS_EVENTS_TIMEOUT": (float, 0.1),
    "CHATOPS_PROGRESS_AFTER": (float, 0),
    "CHATOPS_PROGRESS_EVERY": (float, 1),
    # bytes a platform accepts in one upload, where a site's differs from the platform's usual
    # (a local Telegram Bot API server, a boosted Discord server, a homeserver's own limit)
    "CHATOPS_TELEGRAM_UPLOAD_LIMIT": (int, 1),
    "CHATOPS_DISCORD_UPLOAD_LIMIT": (int, 1),
    "CHATOPS_MATRIX_UPLOAD_LIMIT": (int, 1),
    "CHATOPS_SLACK_UPLOAD_LIMIT": (int, 1),
}
DURATIONS = ("CHATOPS_RESULTS_LINK_LIFETIME",)
BOOLEANS = ("CHATOPS_WEB_SECURE_COOKIE", "CHATOPS_WEB_GUEST", "CHATOPS_SMTP_STARTTLS")


class SetupError(Exception):
    """Something about the installation is wrong; the message says what to do."""


def check_environment(env: Mapping[str, str]) -> list[str]:
    """What is wrong with the settings' values, one line each (empty: nothing)."""
    problems = []
    for name, (kind, least) in NUMBERS.items():
        value = (env.get(name) or "").strip()
        if not value:
            continue
        try:
            number = kind(value)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            problems.append(f"{name} must be {what}, not {value!r}")
            continue
        if number < least:
            problems.append(f"{name} must be at least {least:g}, not {value!r}")
    for name in BOOLEANS:
        value = (env.get(name) or "").strip().lower()
        if value and value not in TRUE_WORDS | FALSE_WORDS:
            problems.append(f"{name} must be true or false (or on/off, yes/no, 1/0), "
                            f"not {env[name]!r}")
    from chatops.params import parse_duration

    for name in DURATIONS:
        value = (env.get(name) or "").strip()
        if value and not parse_duration(value):
            problems.append(f"{name} must be a length of time such as 7d, 36h or 3600, "
                            f"not {env[name]!r}")
    public = (env.get("CHATOPS_WEB_PUBLIC_URL") or "").strip()
    if public and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", public):
        problems.append("CHATOPS_WEB_PUBLIC_URL must be the address people reach the web "
                        f"server at, such as https://chatops.example.org, not {public!r}")
    level = (env.get("CHATOPS_LOG_LEVEL") or "INFO").strip().upper()
    if level not in LOG_LEVELS:
        problems.append(f"CHATOPS_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
                        f"not {env['CHATOPS_LOG_LEVEL']!r}")
    return problems


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    config_path: Path
    workspace_dir: Path
    writeable_dir: Path
    logs_dir: Path
    spool_dir: Path
    run_dir: Path
    max_concurrency: int
    kill_grace_seconds: float
    poll_interval: float
    delivery_attempts: int
    environ: Mapping[str, str] = field(repr=False, default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


    def secret(self, name: str) -> str | None:
        """A credential from the environment, by its platform's usual name."""
        value = self.environ.get(name)
        return value or None

    def named_values(self) -> Iterator[tuple[str, str]]:
        """Every setting by name, whatever its source: where redaction finds the secrets
        (chatops/redact.py)."""
        return iter(self.environ.items())


def read_env_file(path: str | Path) -> dict[str, str]:
    """The settings in a systemd ``EnvironmentFile``: ``KEY=value`` lines, ``#`` comments, a value
    in single or double quotes kept as it is inside them. The units and ``chatops --env-file``
    read the same file, so an admin's command sees what the service sees."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise SetupError(f"cannot read the settings file {path}: {exc.strerror}") from None
    values, problems = {}, []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        name, equals, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not name.isidentifier():
            problems.append(f"{path}:{number}: not KEY=value: {line[:60]!r}")
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    if problems:
        raise SetupError("\n".join(problems))
    return values


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings, or a SetupError naming every variable whose value is wrong."""
    env = dict(os.environ if environ is None else environ)
    env.update(credentials(env))
    problems = check_environment(env)
    if problems:
        raise SetupError("settings with wrong values:\n  " + "\n  ".join(problems))
    home = Path(env.get("CHATOPS_HOME") or REPO_ROOT / "var").resolve()
    database_url = env.get("CHATOPS_DATABASE_URL") or f"sqlite:///{home / 'chatops.db'}"
    return Settings(
        home=home,
        database_url=database_url,
        config_path=Path(env.get("CHATOPS_CONFIG") or REPO_ROOT / "job_configs.py").resolve(),
        workspace_dir=Path(env.get("CHATOPS_WORKSPACE_DIR") or REPO_ROOT / "workspace").resolve(),
        writeable_dir=Path(env.get("CHATOPS_WRITEABLE_DIR") or home / "writeable").resolve(),
        logs_dir=Path(env.get("CHATOPS_LOGS_DIR") or home / "logs").resolve(),
        spool_dir=Path(env.get("CHATOPS_SPOOL_DIR") or home / "spool").resolve(),
        run_dir=Path(env.get("CHATOPS_RUN_DIR") or home / "run").resolve(),
        max_concurrency=int(env.get("CHATOPS_MAX_CONCURRENCY") or (os.cpu_count() or 1) * 4),
        kill_grace_seconds=float(env.get("CHATOPS_KILL_GRACE_SECONDS") or 5),
        poll_interval=float(env.get("CHATOPS_POLL_INTERVAL") or 0.5),
        delivery_attempts=int(env.get("CHATOPS_DELIVERY_ATTEMPTS") or 5),
        environ=env,
    )


def credentials(env: Mapping[str, str]) -> dict[str, str]:
    """Settings read from files rather than the environment: every file in
    ``$CREDENTIALS_DIRECTORY`` (systemd's ``LoadCredential=NAME:/path``) is the setting of its
    name, and ``NAME_FILE=/path`` gives NAME when NAME is a secret (``SLACK_BOT_TOKEN_FILE``;
    not ``SSL_CERT_FILE``). Read once, at start, like the environment; a setting given twice is
    refused, so that nobody wonders which one is used."""
    from chatops.redact import is_secret_name

    found: dict[str, tuple[str, str]] = {}  # name -> (value, where it came from)
    directory = env.get("CREDENTIALS_DIRECTORY")
    if directory:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise SetupError(f"CREDENTIALS_DIRECTORY={directory} cannot be read: "
                             f"{exc.strerror}") from exc
        for entry in entries:
            if entry.is_file():
                found[entry.name] = (_read_credential(entry.path), f"{directory}/{entry.name}")
    for variable, path in env.items():
        name = variable.removesuffix("_FILE")
        if name == variable or not is_secret_name(name):
            continue
        if name in found:
            raise SetupError(f"{name} is given twice, as {variable} and in {found[name][1]}: "
                             "keep one")
        found[name] = (_read_credential(path), variable)
    for name, (_, where) in found.items():
        if env.get(name):
            raise SetupError(f"{name} is set in the environment and in {where}: keep one")
    return {name: value for name, (value, _) in found.items()}


def _read_credential(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().removesuffix("\n").removesuffix("\r")
    except OSError as exc:
        raise SetupError(f"cannot read the credential file {path}: {exc.strerror}") from exc

