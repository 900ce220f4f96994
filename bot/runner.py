"""Run chat platforms: each one's inbound side and its outbox worker, in threads."""

from __future__ import annotations

import logging
import threading

from bot.outbox import OutboxWorker
from bot.registry import PLATFORMS, platform_class
from chatops.commands import CommandHandler
from chatops.platform import Platform
from chatops.service import Service
from chatops.settings import Settings

log = logging.getLogger("chatops.bot")


def configured_platforms(settings: Settings) -> list[str]:
    """The platforms whose credentials are set (the console always)."""
    return [name for name in PLATFORMS if platform_class(name).is_configured(settings)]


def not_started(settings: Settings) -> list[str]:
    """A line for each platform left out because only some of its settings are set."""
    lines = []
    for name in PLATFORMS:
        missing = platform_class(name).missing_settings(settings)
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            lines.append(f"{name} is not started: {' and '.join(missing)} {verb} not set "
                         f"(see DEPLOY.md, section {name.capitalize()})")
    return lines


def create_platforms(service: Service, names: list[str]) -> list[Platform]:
    return [platform_class(name).create(service) for name in names]


def run_platforms(service: Service, platforms: list[Platform], stop: threading.Event,
                  handler: CommandHandler | None = None) -> None:
    handler = handler or CommandHandler(service.settings, service.config, service.queue)
    threads = []
    for platform in platforms:
        if platform.name != "console":  # console deliveries wait for their session to read
            worker = OutboxWorker(service.settings, service.queue, platform)
            threads.append(threading.Thread(target=worker.run, args=(stop,),
                                            name=f"outbox-{platform.name}", daemon=True))
        threads.append(threading.Thread(target=platform.serve, args=(handler, stop),
                                        name=f"inbound-{platform.name}", daemon=True))
    for thread in threads:
        thread.start()
    log.info("platforms running: %s", ", ".join(p.name for p in platforms))
    stop.wait()
    for platform in platforms:
        try:
            platform.close()
        except Exception:  # closing is best effort at shutdown
            log.exception("closing %s failed", platform.name)
