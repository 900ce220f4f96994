"""Discord webhooks as an outbound-only platform: the cluster monitor's ``discord_webhook:NAME``
targets, which is how its predecessor (a status poller) posted.

A delivery's channel is the name of the environment variable that holds the webhook's URL (the
URL carries the webhook's secret token, so job_configs.py only names it). The platform runs when
the environment holds a Discord webhook URL. Messages are split to Discord's 2 000 characters
as the Discord bot splits them; mentions are never pinged.
"""

from __future__ import annotations

import re
from typing import ClassVar

import httpx

from bot.discord.send import outs
from bot.render import delivery_pieces
from chatops.platform import Delivery, DeliveryError, Platform
from chatops.service import Service
from chatops.settings import Settings

WEBHOOK_URL = re.compile(r"^https?://\S+/webhooks/\d+/[\w.-]+/?$")
TIMEOUT = 10.0


class DiscordWebhookPlatform(Platform):
    name = "discord_webhook"
    inbound: ClassVar[bool] = False  # sent beside the dispatcher, as mail and Teams

    def __init__(self, service: Service):
        self.environ = service.settings.environ
        self.client = httpx.Client(timeout=TIMEOUT)

    @classmethod
    def is_configured(cls, settings: Settings) -> bool:
        return any(WEBHOOK_URL.match(value or "") for value in settings.environ.values())

    def deliver(self, delivery: Delivery) -> None:
        name = delivery.channel or ""
        url = self.environ.get(name, "")
        if not WEBHOOK_URL.match(url):
            raise DeliveryError(f"environment variable {name} does not hold a Discord webhook "
                                "URL (https://discord.com/api/webhooks/<id>/<token>); set it and "
                                "restart the service", permanent=True)
        items = outs(delivery_pieces(delivery.payload), "message.txt")
        sent = delivery.progress.get("sent", 0)
        for item in items[sent:]:
            if item.content is None:
                continue  # (attachments: monitor messages have none)
            self._post(url, name, item.content)
            sent += 1
            delivery.record("sent", sent)

    def _post(self, url: str, name: str, content: str) -> None:
        try:
            response = self.client.post(url, params={"wait": "true"}, json={
                "content": content, "allowed_mentions": {"parse": []}})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"cannot reach the Discord webhook in {name}: "
                                f"{type(exc).__name__}") from exc
        if response.status_code == 429:
            wait = float(response.headers.get("Retry-After") or 5)
            raise DeliveryError(f"Discord asked to wait {wait:g} s (429 Too Many Requests)",
                                retry_after=wait)
        if response.status_code >= 500:
            raise DeliveryError(f"the Discord webhook in {name} answered HTTP "
                                f"{response.status_code}")
        if response.status_code >= 400:
            raise DeliveryError(f"the Discord webhook in {name} refused the message (HTTP "
                                f"{response.status_code})", permanent=True)

    def close(self) -> None:
        self.client.close()
