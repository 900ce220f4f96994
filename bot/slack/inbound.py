"""Slack events in, clean command text out: which messages count, mentions and markup decoded.

Slack sends ``app_mention`` for channels and ``message`` (``channel_type: im``) for direct
messages. Text arrives with Slack's markup: mentions ``<@U…>``/``<@U…|name>``, links
``<url>``/``<url|label>``, channels ``<#C…|name>``, specials ``<!here>``, and ``& < >`` escaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SLACKBOT = "USLACKBOT"  # reminders arrive as Slackbot's messages: they are commands too

# One markup token: never spans a '>', so `<@B|name> … <url>` cannot swallow the link (the
# predecessor's greedy pattern did).
_TOKEN = re.compile(r"<([^<>]*)>")
# Message subtypes a person types; every other subtype (edits, deletions, joins, bot posts) is
# not a command.
_COMMAND_SUBTYPES = {None, "thread_broadcast", "file_share"}


@dataclass(frozen=True)
class SlackMessage:
    """The parts of an event a command needs."""

    user: str
    channel: str
    ts: str
    thread_ts: str | None
    text: str  # decoded, mention removed, trailing dots dropped
    is_direct: bool


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape(text: str) -> str:
    """Text we send: Slack needs these three escaped to show them literally."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _decode_token(body: str) -> str:
    target, _, label = body.partition("|")
    if target.startswith("@"):  # a user: its name when Slack gave one
        return "@" + (label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):  # <!here>, <!subteam^S1|@team>, <!date^…|fallback>
        if label:
            return label
        return "@" + target[1:].split("^")[0]
    if target.startswith("mailto:"):
        return target[len("mailto:"):]
    return target  # a link: the URL itself, whatever label Slack shows


def decode(text: str) -> str:
    """Slack markup to what the user meant: links unwrapped, mentions named, entities undone."""
    return unescape(_TOKEN.sub(lambda m: _decode_token(m.group(1)), text))


def command_text(raw: str, bot_user_id: str | None) -> str:
    """The command in a message: the text after the first mention of the bot (anything before
    it, such as "Reminder:", is dropped), decoded, with extra spaces and trailing dots gone."""
    if bot_user_id:
        mention = re.search(rf"<@{re.escape(bot_user_id)}(?:\|[^<>]*)?>", raw)
        if mention:
            raw = raw[mention.end():]
    text = " ".join(decode(raw).split())
    return text.rstrip(".").strip()


def parse_event(event: dict[str, Any], bot_user_id: str | None) -> SlackMessage | None:
    """A command message, or None for what the bot must ignore."""
    kind = event.get("type")
    if event.get("subtype") not in _COMMAND_SUBTYPES or "edited" in event:
        return None
    user = event.get("user")
    if not user or user == bot_user_id:
        return None
    if (event.get("bot_id") or event.get("bot_profile")) and user != SLACKBOT:
        return None
    is_direct = event.get("channel_type") == "im"
    if kind == "message" and not is_direct:
        return None  # channel messages count only as app_mention events
    raw = event.get("text") or ""
    if kind == "app_mention" and bot_user_id and f"<@{bot_user_id}" not in raw:
        return None
    channel, ts = event.get("channel"), event.get("ts")
    if not channel or not ts:
        return None
    return SlackMessage(user=user, channel=channel, ts=ts, thread_ts=event.get("thread_ts"),
                        text=command_text(raw, bot_user_id), is_direct=is_direct)
