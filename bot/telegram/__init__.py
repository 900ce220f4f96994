"""Telegram: commands by long polling (or webhook), reports by the Bot API."""

from bot.telegram.platform import TelegramPlatform

__all__ = ["TelegramPlatform"]
