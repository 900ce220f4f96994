"""The console platform: ``chatops chat`` and the web console talk to the service through it.

Inbound: the text typed, with a channel unique to the session. Outbound: deliveries for that
channel stay in the queue until the session reads them (``take``), rendered as plain text.
"""

from __future__ import annotations

from chatops.platform import Delivery, Platform
from chatops.service import Service
from chatops.settings import Settings


class ConsolePlatform(Platform):
    name = "console"

    def __init__(self, service: Service):
        self.service = service

    @classmethod
    def is_configured(cls, settings: Settings) -> bool:
        return True  # the console needs nothing

    def deliver(self, delivery: Delivery) -> None:
        # Console deliveries wait in the queue for their session to read them.
        return None

