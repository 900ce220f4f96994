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

from bot.discord.send import MESSAGE_LIMIT, outs
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
        if delivery.payload.get("kind") == "live":
            self._live(url, name, delivery)
            return
        items = outs(delivery_pieces(delivery.payload), "message.txt")
        sent = delivery.progress.get("sent", 0)
        for item in items[sent:]:
            if item.content is None:
                continue  # (attachments: monitor messages have none)
            self._post(url, name, item.content)
            sent += 1
            delivery.record("sent", sent)

    def _live(self, url: str, name: str, delivery: Delivery) -> None:
        """A message that changes (the monitor's board): posted once, then edited (PATCH) with
        its newest text. A message deleted in Discord fails the edit for good (404), so the
        monitor posts a new board."""
        content = delivery.payload.get("text", "")[:MESSAGE_LIMIT]
        posted = delivery.progress.get("live")
        if posted is None:
            answer = self._post(url, name, content)
            delivery.record("live", str(answer.get("id", "")))
        else:
            self._post(url, name, content, message=str(posted))

    def _post(self, url: str, name: str, content: str, message: str | None = None
              ) -> dict:
        body = {"content": content, "allowed_mentions": {"parse": []}}
        try:
            if message is None:
                response = self.client.post(url, params={"wait": "true"}, json=body)
            else:
                response = self.client.patch(f"{url.rstrip('/')}/messages/{message}", json=body)
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
        try:
            return response.json()
        except ValueError:  # (wait=true answers the message; anything else says nothing)
            return {}

    def close(self) -> None:
        self.client.close()
