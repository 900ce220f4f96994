"""Check the ``notifications`` settings and the site's templates: every problem at once.

``chatops config check`` prints them; a service refuses to start with them (instead of turning
notifications off). Each line names the key or file, what is wrong, and what would do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from chatops.notify.config import CONNECTORS

SECTIONS: dict[str, tuple[str, ...]] = {
    "mailto": ("allowed_domains", "allowed_patterns"),
    "slack": ("allowed_channels",),
    "msteams": ("webhook_url_env", "allowed_domains"),
    "hints": ("memory_low", "cpu_low", "time_low"),
    "user_cap": ("count", "window"),
}
NUMBERS = ("backoff_base", "backoff_max", "max_wait", "stats_wait", "sacct_timeout")
KEYS = ("default_connector", "qos", "rate_limits", "attempts", *SECTIONS, *NUMBERS)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _strings(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


def check_notifications(raw: Any) -> list[str]:
    """Every problem of a ``notifications`` dict, as lines starting ``notifications...``."""
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [f"notifications must be a dict, not {type(raw).__name__}"]
    errors: list[str] = []

    def error(key: str, text: str) -> None:
        errors.append(f"notifications.{key}: {text}")

    for key in raw:
        if key not in KEYS:
            error(str(key), f"unknown key (known: {', '.join(KEYS)})")
    default = raw.get("default_connector")
    if default is not None and default not in CONNECTORS:
        error("default_connector", f"{default!r} is not a connector (one of "
              f"{', '.join(CONNECTORS)})")
    for section, known in SECTIONS.items():
        value = raw.get(section)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            error(section, f"must be a dict, not {type(value).__name__}")
            continue
        for key in value:
            if key not in known:
                error(f"{section}.{key}", f"unknown key (known: {', '.join(known)})")
    _check_lists(raw, error)
    _check_numbers(raw, error)
    return errors


def _check_lists(raw: Mapping[str, Any], error: Any) -> None:
    for section, key in (("mailto", "allowed_domains"), ("msteams", "allowed_domains"),
                         ("slack", "allowed_channels"), ("mailto", "allowed_patterns")):
        value = (raw.get(section) or {}).get(key) if isinstance(raw.get(section), Mapping) \
            else None
        if value is not None and not _strings(value):
            error(f"{section}.{key}", "must be a list of strings")
        elif key == "allowed_patterns" and value:
            for pattern in value:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    error(f"{section}.{key}", f"{pattern!r} is not a regular expression: {exc}")
    teams = raw.get("msteams")
    env = teams.get("webhook_url_env") if isinstance(teams, Mapping) else None
    if env is not None and not (isinstance(env, str) and _ENV_NAME.match(env)):
        error("msteams.webhook_url_env", f"{env!r} is not an environment variable name "
              "(e.g. CHATOPS_TEAMS_WEBHOOK_URL; the URL itself is a secret: keep it there)")


def _check_numbers(raw: Mapping[str, Any], error: Any) -> None:
    for key in NUMBERS:
        if key in raw and not (_number(raw[key]) and raw[key] >= 0):
            error(key, f"must be a number of seconds ≥ 0, not {raw[key]!r}")
    attempts = raw.get("attempts")
    if attempts is not None and not (isinstance(attempts, int) and not isinstance(
            attempts, bool) and attempts >= 1):
        error("attempts", f"must be a whole number ≥ 1, not {attempts!r}")
    hints = raw.get("hints")
    for key, value in (hints.items() if isinstance(hints, Mapping) else ()):
        if key in SECTIONS["hints"] and not (_number(value) and 0 <= value <= 1):
            error(f"hints.{key}", f"must be a share between 0 and 1, not {value!r}")
    cap = raw.get("user_cap")
    if isinstance(cap, Mapping):
        if "count" in cap and not (isinstance(cap["count"], int) and cap["count"] >= 1):
            error("user_cap.count", f"must be a whole number ≥ 1, not {cap['count']!r}")
        if "window" in cap and not (_number(cap["window"]) and cap["window"] > 0):
            error("user_cap.window", f"must be a number of seconds > 0, not {cap['window']!r}")
    qos = raw.get("qos")
    if qos is not None and not isinstance(qos, Mapping):
        error("qos", f"must be a dict of QoS name: seconds, not {type(qos).__name__}")
    for name, seconds in (qos.items() if isinstance(qos, Mapping) else ()):
        if not (_number(seconds) and seconds > 0):
            error(f"qos.{name}", f"must be its time limit in seconds (> 0), not {seconds!r}")
    limits = raw.get("rate_limits")
    if limits is not None and not isinstance(limits, Mapping):
        error("rate_limits", f"must be a dict of connector: limits, not {type(limits).__name__}")
    for name, values in (limits.items() if isinstance(limits, Mapping) else ()):
        if name not in CONNECTORS:
            error(f"rate_limits.{name}", f"not a connector (one of {', '.join(CONNECTORS)})")
        elif not isinstance(values, Mapping):
            error(f"rate_limits.{name}", "must be a dict with per_target and per_second")
        else:
            for key, value in values.items():
                if key not in ("per_target", "per_second"):
                    error(f"rate_limits.{name}.{key}", "unknown key (known: per_target, "
                          "per_second)")
                elif not (_number(value) and value >= 0):
                    error(f"rate_limits.{name}.{key}", f"must be a number ≥ 0, not {value!r}")


def check_templates(site_dir: str | None) -> list[str]:
    """Every template a notification may use, compiled: the site's overrides
    (CHATOPS_TEMPLATES_DIR) and the package's; a line per file that does not compile."""
    from chatops.notify.render import PACKAGE_DIR

    errors: list[str] = []
    folders = [PACKAGE_DIR]
    if site_dir:
        if not Path(site_dir).is_dir():
            return [f"CHATOPS_TEMPLATES_DIR ({site_dir}) is not a folder: create it, with one "
                    "folder per connector (e.g. telegram/fail.j2), or unset it"]
        folders.insert(0, Path(site_dir))
    env = jinja2.Environment()
    for folder in folders:
        for path in sorted(folder.rglob("*.j2")):
            connector = path.relative_to(folder).parts[0]
            if folder != PACKAGE_DIR and connector not in CONNECTORS:
                errors.append(f"{path}: {connector!r} is not a connector (one of "
                              f"{', '.join(CONNECTORS)}); the template is never used")
                continue
            try:
                env.parse(path.read_text())
            except jinja2.TemplateSyntaxError as exc:
                errors.append(f"{path}:{exc.lineno}: {exc.message}")
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(f"{path}: cannot be read: {exc}")
    return errors


def credentials(connector: str, teams_env: str) -> str:
    """What turns a connector on, for a message naming what to set."""
    return {"slack": "SLACK_BOT_TOKEN", "telegram": "TELEGRAM_BOT_TOKEN",
            "discord": "DISCORD_BOT_TOKEN, DISCORD_APPLICATION_ID and DISCORD_PUBLIC_KEY",
            "msteams": teams_env, "mailto": "CHATOPS_SMTP_HOST",
            "matrix": "MATRIX_HOMESERVER_URL, MATRIX_USER_ID and MATRIX_ACCESS_TOKEN (or "
                      "MATRIX_PASSWORD)"}[connector]


def check_setup(raw: Any, environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the notification settings against this environment: connectors
    the settings rely on without their credentials, and the templates."""
    from chatops.notify.config import configured_connectors, load_notify_config
    from chatops.notify.render import templates_dir

    if check_notifications(raw):
        return [], []  # load_config reports those
    cfg = load_notify_config(raw, environ)
    on = configured_connectors(environ, cfg)
    errors, warnings = [], []
    if cfg.default_connector and cfg.default_connector not in on:
        errors.append(f"notifications.default_connector: {cfg.default_connector!r} is not "
                      f"configured: set {credentials(cfg.default_connector, cfg.teams_webhook_env)}"
                      " (or name a configured connector)")
    if "msteams" in (raw or {}) and "msteams" not in on:
        errors.append(f"notifications.msteams: the Teams webhook URL is not set: put it in "
                      f"{cfg.teams_webhook_env}")
    for section in ("mailto", "slack"):
        if section in (raw or {}) and section not in on:
            warnings.append(f"notifications.{section} is set, but {section} is not configured "
                            f"(set {credentials(section, cfg.teams_webhook_env)}): its "
                            "receivers are refused")
    errors.extend(check_templates(templates_dir(environ)))
    return errors, warnings
