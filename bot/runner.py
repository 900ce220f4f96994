"""Run chat platforms: each one's inbound side and its outbox worker, in threads."""

from __future__ import annotations

import logging
import threading

from bot.commands import CommandHandler
from bot.outbox import OutboxWorker
from bot.registry import platform_class
from chatops.service import Service
from chatops.settings import Settings

log = logging.getLogger("chatops.bot")


def configured_platforms(settings: Settings) -> list[str]:
    """The console always; other platforms when their credentials are set."""
    names = ["console"]
    from bot.registry import PLATFORMS

    for name in PLATFORMS:
        if name == "console":
            continue
        cls = platform_class(name)
        if getattr(cls, "is_configured", lambda s: False)(settings):
            names.append(name)
    return names


def run_platforms(service: Service, names: list[str], stop: threading.Event) -> None:
    handler = CommandHandler(service.settings, service.config, service.queue)
    threads = []
    for name in names:
        cls = platform_class(name)
        platform = cls.create(service) if hasattr(cls, "create") else cls(service.queue)
        if name != "console":  # console deliveries wait for their session to read them
            worker = OutboxWorker(service.settings, service.queue, platform)
            threads.append(threading.Thread(target=worker.run, args=(stop,),
                                            name=f"outbox-{name}", daemon=True))
        threads.append(threading.Thread(target=platform.serve, args=(handler, stop),
                                        name=f"inbound-{name}", daemon=True))
    for thread in threads:
        thread.start()
    log.info("platforms running: %s", ", ".join(names))
    stop.wait()
