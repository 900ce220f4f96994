"""The one interface every chat platform implements (console, slack, telegram, discord, ...).

Inbound: the platform turns its events into ``Incoming`` and passes them to a
``CommandHandler``; it renders the ``Response``. Outbound: ``deliver`` sends one queued
``Delivery`` (a job's report or a notice) to a channel/thread, raising ``DeliveryError`` when it
could not (with ``retry_after`` when the platform said when to try again). A delivery of several
messages records each one sent (``Delivery.record``): the record is saved with the delivery, so
a retry — by this bot or by one started after it died — sends only what is missing.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from chatops.commands import CommandHandler
from chatops.queue import Queue
from chatops.report import Report
from chatops.settings import Settings

if TYPE_CHECKING:
    from flask import Blueprint

    from chatops.service import Service


class DeliveryError(Exception):
    def __init__(self, message: str, retry_after: float | None = None, permanent: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


@dataclass(frozen=True)
class Delivery:
    id: int
    platform: str
    channel: str | None
    thread: str | None
    message: str | None  # the request message, for reactions
    is_direct: bool
    payload: dict[str, Any]
    attempts: int
    job_id: int | None = None
    progress: dict[str, Any] = field(default_factory=dict, compare=False)  # steps already done
    on_progress: Callable[[dict[str, Any]], None] | None = field(default=None, compare=False,
                                                                 repr=False)

    @classmethod
    def from_row(cls, row: Any, on_progress: Callable[[dict[str, Any]], None] | None = None
                 ) -> Delivery:
        return cls(id=row.id, platform=row.platform, channel=row.channel, thread=row.thread,
                   message=row.message, is_direct=bool(row.is_direct),
                   payload=json.loads(row.payload), attempts=row.attempts, job_id=row.job_id,
                   progress=json.loads(row.progress or "{}"),
                   on_progress=on_progress)

    def record(self, step: str, value: Any = True) -> None:
        """Remember that ``step`` is done (``value``: what later steps need of it, JSON)."""
        self.progress[step] = value
        if self.on_progress is not None:
            self.on_progress(self.progress)

    @property
    def report(self) -> Report | None:
        return Report.from_payload(self.payload) if self.payload.get("kind") == "report" else None


def take_waiting(queue: Queue, platform: str, channel: str) -> list[Delivery]:
    """Deliveries waiting for a console session to read them, marked delivered."""
    return [Delivery.from_row(r) for r in queue.take_channel_deliveries(platform, channel)]


class Platform(ABC):
    """A chat platform: both directions, built from the service's settings.

    Adding a platform is one package in ``bot/`` with a subclass of this, and one line in
    ``bot/registry.py``. Everything but ``deliver`` has a default.
    """

    name: ClassVar[str]
    # False for platforms nobody writes to us on (mail, Teams webhooks): their sender runs
    # beside the dispatcher, not in a bot process.
    inbound: ClassVar[bool] = True
    # How long a claimed message may stay "sending" before another sender takes it over: less
    # than the time the platform recognises a resend (Discord's nonce: a few minutes).
    lease_seconds: ClassVar[float] = 600.0

    @classmethod
    def is_configured(cls, settings: Settings) -> bool:
        """Whether the settings hold this platform's credentials (``chatops run`` starts it)."""
        return False

    @classmethod
    def is_configured_for(cls, service: Service) -> bool:
        """``is_configured``, for platforms whose credentials the job config may name."""
        return cls.is_configured(service.settings)

    @classmethod
    def missing_settings(cls, settings: Settings) -> list[str]:
        """The settings still missing when only some of the platform's are set (such a
        platform is not started, and ``chatops run`` names what is missing); empty when it is
        configured or not set up at all."""
        return []

    @classmethod
    def create(cls, service: Service) -> Platform:
        """Build the platform from the service's settings; raise SetupError naming what is
        missing or wrong."""
        return cls(service)  # type: ignore[call-arg]  # subclasses take the service

    def check(self) -> None:
        """Ask the platform whether the credentials work, before serving; raise SetupError
        naming the setting that is wrong (nothing to check by default)."""
        return None

    def serve(self, handler: CommandHandler, stop: threading.Event) -> None:
        """Receive commands until ``stop`` is set (platforms served over HTTP need not)."""
        stop.wait()

    def http_blueprint(self, handler: CommandHandler) -> Blueprint | None:
        """The Flask blueprint of the platform's inbound HTTP endpoints, if it has any."""
        return None

    def register_commands(self) -> list[str]:
        """Register the platform's slash commands with it; their names (none by default)."""
        return []

    @abstractmethod
    def deliver(self, delivery: Delivery) -> None:
        """Send one report or notice; raise DeliveryError if it did not arrive."""

    def close(self) -> None:
        """Release connections and threads."""
        return None
