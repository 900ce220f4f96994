"""Notification settings: ``notifications = {...}`` in job_configs.py plus the environment.

Example (every key optional)::

    notifications = {
        "default_connector": "mailto",            # else CHATOPS_NOTIFY_DEFAULT_CONNECTOR
        "mailto": {"allowed_domains": ["uni.example"], "allowed_patterns": [r"^ops@"]},
        "slack": {"allowed_channels": ["C0123456"]},
        "msteams": {"webhook_url_env": "CHATOPS_TEAMS_WEBHOOK_URL",
                    "allowed_domains": ["uni.example"]},
        "hints": {"memory_low": 0.5, "cpu_low": 0.5, "time_low": 0.5},
        "qos": {"short": 3600, "normal": 86400, "long": 604800},
        "rate_limits": {"telegram": {"per_target": 1.0, "per_second": 30}},
        "user_cap": {"count": 50, "window": 3600},
        "attempts": 8, "backoff_base": 1.0, "backoff_max": 300,
        "max_wait": 3600,                         # a throttled message's total wait (429s)
        "stats_wait": 5.0,                        # seconds to wait for accounting lag
    }
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CONNECTORS = ("slack", "telegram", "discord", "msteams", "mailto", "matrix")

# Seconds between two messages to one target, and messages per second for the whole connector.
DEFAULT_RATE_LIMITS: dict[str, dict[str, float]] = {
    "telegram": {"per_target": 1.0, "per_second": 30.0},
    "slack": {"per_target": 1.0, "per_second": 20.0},
    "discord": {"per_target": 0.25, "per_second": 40.0},
    "msteams": {"per_target": 0.25, "per_second": 4.0},
    "matrix": {"per_target": 0.2, "per_second": 10.0},
    "mailto": {"per_target": 0.0, "per_second": 20.0},
}


@dataclass(frozen=True)
class RateLimit:
    per_target: float  # seconds between messages to one target
    per_second: float  # messages per second over the whole connector (0: unlimited)


@dataclass(frozen=True)
class NotifyConfig:
    default_connector: str | None = None
    mail_domains: tuple[str, ...] = ()
    mail_patterns: tuple[re.Pattern[str], ...] = ()
    slack_channels: frozenset[str] = frozenset()
    teams_domains: tuple[str, ...] = ()
    teams_webhook_env: str = "CHATOPS_TEAMS_WEBHOOK_URL"
    memory_low: float = 0.5
    cpu_low: float = 0.5
    time_low: float = 0.5
    qos: Mapping[str, float] = field(default_factory=dict)
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    user_cap: int = 50
    user_window: float = 3600.0
    attempts: int = 8
    backoff_base: float = 1.0  # seconds before the 2nd attempt; doubles per attempt
    backoff_max: float = 300.0
    max_wait: float = 3600.0  # seconds a throttled (429) message may wait in all
    stats_wait: float = 5.0
    sacct_timeout: float = 5.0

    def rate_limit(self, connector: str) -> RateLimit:
        return self.rate_limits.get(connector) or RateLimit(0.0, 0.0)


def _domains(raw: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(d).lower().lstrip("@") for d in raw.get("allowed_domains") or ())


def load_notify_config(raw: Mapping[str, Any] | None,
                       environ: Mapping[str, str] | None = None) -> NotifyConfig:
    """Build the typed settings; a bad value raises ValueError naming the key."""
    raw = dict(raw or {})
    env = environ or {}
    mail = raw.get("mailto") or {}
    teams = raw.get("msteams") or {}
    hints = raw.get("hints") or {}
    cap = raw.get("user_cap") or {}
    limits = {name: RateLimit(**values) for name, values in DEFAULT_RATE_LIMITS.items()}
    for name, values in (raw.get("rate_limits") or {}).items():
        base = limits.get(name, RateLimit(0.0, 0.0))
        limits[name] = RateLimit(float(values.get("per_target", base.per_target)),
                                 float(values.get("per_second", base.per_second)))
    try:
        patterns = tuple(re.compile(p) for p in mail.get("allowed_patterns") or ())
    except re.error as exc:
        raise ValueError(f"notifications.mailto.allowed_patterns: {exc}") from exc
    return NotifyConfig(
        default_connector=(raw.get("default_connector")
                           or env.get("CHATOPS_NOTIFY_DEFAULT_CONNECTOR") or None),
        mail_domains=_domains(mail), mail_patterns=patterns,
        slack_channels=frozenset((raw.get("slack") or {}).get("allowed_channels") or ()),
        teams_domains=_domains(teams),
        teams_webhook_env=str(teams.get("webhook_url_env") or "CHATOPS_TEAMS_WEBHOOK_URL"),
        memory_low=float(hints.get("memory_low", 0.5)), cpu_low=float(hints.get("cpu_low", 0.5)),
        time_low=float(hints.get("time_low", 0.5)),
        qos={str(k): float(v) for k, v in (raw.get("qos") or {}).items()},
        rate_limits=limits, user_cap=int(cap.get("count", 50)),
        user_window=float(cap.get("window", 3600)), attempts=int(raw.get("attempts", 8)),
        backoff_base=float(raw.get("backoff_base", 1.0)),
        backoff_max=float(raw.get("backoff_max", 300.0)),
        max_wait=float(raw.get("max_wait", 3600.0)),
        stats_wait=float(raw.get("stats_wait", 5.0)),
        sacct_timeout=float(raw.get("sacct_timeout", 5.0)),
    )


def configured_connectors(environ: Mapping[str, str], cfg: NotifyConfig) -> set[str]:
    """The connectors whose credentials are set: a receiver on another one is refused (its
    platform's sender, ``bot/sender.py``, would never send it). The console (``console:<user>``)
    always: it needs nothing, and its messages wait for the person's next session."""
    out = {name for name, variable in (("slack", "SLACK_BOT_TOKEN"),
                                       ("telegram", "TELEGRAM_BOT_TOKEN"),
                                       ("msteams", cfg.teams_webhook_env),
                                       ("mailto", "CHATOPS_SMTP_HOST")) if environ.get(variable)}
    out.add("console")
    if all(environ.get(name) for name in ("DISCORD_BOT_TOKEN", "DISCORD_APPLICATION_ID",
                                          "DISCORD_PUBLIC_KEY")):
        out.add("discord")
    if environ.get("MATRIX_HOMESERVER_URL") and environ.get("MATRIX_USER_ID") and (
            environ.get("MATRIX_ACCESS_TOKEN") or environ.get("MATRIX_PASSWORD")):
        out.add("matrix")
    return out
