"""The chat platforms this service knows: name -> where its Platform class lives.

Adding a platform is one module in ``bot/`` and one line here.
"""

from __future__ import annotations

import importlib

from chatops.platform import Platform
from chatops.service import SetupError

PLATFORMS = {
    "console": "bot.console:ConsolePlatform",
    "telegram": "bot.telegram:TelegramPlatform",
    "discord": "bot.discord:DiscordPlatform",
    "slack": "bot.slack:SlackPlatform",
    "matrix": "bot.matrix:MatrixPlatform",
    "mailto": "bot.mail:MailPlatform",  # outbound only, as the next two
    "msteams": "bot.teams:TeamsPlatform",
    "discord_webhook": "bot.discord_webhook:DiscordWebhookPlatform",
}


def platform_class(name: str) -> type[Platform]:
    try:
        module_name, _, class_name = PLATFORMS[name].partition(":")
    except KeyError:
        known = ", ".join(sorted(PLATFORMS))
        raise SetupError(f"unknown platform {name!r}; known platforms: {known}") from None
    return getattr(importlib.import_module(module_name), class_name)
