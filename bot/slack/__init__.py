"""Slack: commands from mentions and direct messages, reports to threads (see platform.py)."""

from bot.slack.platform import SlackPlatform

__all__ = ["SlackPlatform"]
