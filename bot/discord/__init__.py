"""Discord: slash commands by HTTP interactions, reports by the REST API."""

from bot.discord.platform import DiscordPlatform

__all__ = ["DiscordPlatform"]
