"""Run platforms: each one's inbound side and its sender, in threads."""

from __future__ import annotations

import logging
import threading

from bot.registry import PLATFORMS, platform_class
from bot.sender import Sender
from chatops.commands import CommandHandler
from chatops.platform import Platform
from chatops.service import Service
from chatops.settings import Settings

log = logging.getLogger("chatops.bot")


def configured_platforms(settings: Settings) -> list[str]:
    """The chat platforms whose credentials are set (the console always)."""
    return [name for name in PLATFORMS if platform_class(name).inbound
            and platform_class(name).is_configured(settings)]


def outbound_only(service: Service) -> list[Platform]:
    """The configured platforms with no inbound side (mail, Teams): the dispatcher's process
    sends for them, so a site running only the dispatcher still gets its e-mail."""
    return [platform_class(name).create(service) for name in PLATFORMS
            if not platform_class(name).inbound and platform_class(name).is_configured_for(service)]


def start_senders(service: Service, platforms: list[Platform],
                  stop: threading.Event) -> list[threading.Thread]:
    """One sender thread per platform (not the console: its messages wait for its session)."""
    threads = []
    for platform in platforms:
        if platform.name == "console":
            continue
        sender = Sender.for_service(service, platform)
        thread = threading.Thread(target=sender.run, args=(stop,), name=f"send-{platform.name}",
                                  daemon=True)
        thread.start()
        threads.append(thread)
    if threads:
        log.info("senders running: %s", ", ".join(t.name[5:] for t in threads))
    return threads


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
    start_senders(service, platforms, stop)
    for platform in platforms:
        threading.Thread(target=platform.serve, args=(handler, stop),
                         name=f"inbound-{platform.name}", daemon=True).start()
    log.info("platforms running: %s", ", ".join(p.name for p in platforms))
    stop.wait()
    for platform in platforms:
        try:
            platform.close()
        except Exception:  # closing is best effort at shutdown
            log.exception("closing %s failed", platform.name)
