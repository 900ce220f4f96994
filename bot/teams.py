"""Microsoft Teams: Slurm notifications as Adaptive Cards to one incoming webhook (the channel),
mentioning the target user. Outbound only: the dispatcher's process sends it.

Settings: the webhook URL in CHATOPS_TEAMS_WEBHOOK_URL (or the variable that
``notifications["msteams"]["webhook_url_env"]`` names). The URL holds a secret: errors name
only what went wrong.
"""

from __future__ import annotations

import json
from typing import ClassVar

import httpx

from chatops.notify.config import load_notify_config
from chatops.notify.render import for_platform, templates_dir
from chatops.platform import Delivery, DeliveryError, Platform
from chatops.service import Service, SetupError
from chatops.settings import Settings

TIMEOUT = 10.0


def _webhook_env(settings: Settings, notifications: object = None) -> str:
    raw = notifications if isinstance(notifications, dict) else {}
    return load_notify_config(raw, settings.environ).teams_webhook_env


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


class TeamsPlatform(Platform):
    name = "msteams"
    inbound: ClassVar[bool] = False

    def __init__(self, service: Service):
        env_name = _webhook_env(service.settings, dict(service.config.notifications))
        url = service.settings.secret(env_name)
        if not url:
            raise SetupError(f"{env_name} is not set: Teams notifications need the channel's "
                             "incoming webhook URL")
        self.url = url
        self.site_dir = templates_dir(service.settings.environ)
        self.http = httpx.Client(timeout=TIMEOUT)

    @classmethod
    def is_configured(cls, settings: Settings) -> bool:
        return bool(settings.secret(_webhook_env(settings)))

    @classmethod
    def is_configured_for(cls, service: Service) -> bool:
        return bool(service.settings.secret(_webhook_env(
            service.settings, dict(service.config.notifications))))

    def deliver(self, delivery: Delivery) -> None:
        message = for_platform(self.name, delivery.channel or "", delivery.payload,
                               self.site_dir)
        body = json.dumps(message["card"])  # data to JSON, never text substitution
        try:
            response = self.http.post(self.url, content=body,
                                      headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"Teams webhook unreachable: {type(exc).__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise DeliveryError(f"Teams webhook answered HTTP {response.status_code}",
                                retry_after=_retry_after(response))
        if response.status_code >= 400:
            raise DeliveryError(f"Teams webhook answered HTTP {response.status_code}",
                                permanent=True)

    def close(self) -> None:
        self.http.close()
