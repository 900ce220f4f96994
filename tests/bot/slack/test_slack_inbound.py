"""Event → command text: mentions, reminders, markup, and what is not a command."""

from __future__ import annotations

import pytest

from bot.slack.inbound import command_text, decode, escape, parse_event


@pytest.mark.parametrize(("raw", "text"), [
    ("<@UBOT> example say hello Bob", "example say hello Bob"),
    ("<@UBOT>example say hello Bob", "example say hello Bob"),
    ("<@UBOT> example say hello Bob.", "example say hello Bob"),
    ("<@UBOT>  example\n say   hello Bob .", "example say hello Bob"),
    ("hi there <@UBOT> status", "status"),
    ("Reminder: <@UBOT|chatops> example say hello Bob.", "example say hello Bob"),
    # The predecessor's greedy pattern ate everything up to the link's closing '>'.
    ("<@UBOT|chatops> example echo <http://x.org|x.org>", "example echo http://x.org"),
    ("<@UBOT> example echo <@U2|carol> and <@UBOT>", "example echo @carol and @UBOT"),
    ("example say hello Bob", "example say hello Bob"),  # a direct message
    ("<@UOTHER> example say hello Bob", "@UOTHER example say hello Bob"),
])
def test_command_text(raw: str, text: str) -> None:
    assert command_text(raw, "UBOT") == text


@pytest.mark.parametrize(("raw", "meant"), [
    ("<http://x.org/a>", "http://x.org/a"),
    ("<http://x.org/a|x.org>", "http://x.org/a"),
    ("<https://y.org/?q=1&amp;r=2>", "https://y.org/?q=1&r=2"),
    ("<mailto:a@b.org|a@b.org>", "a@b.org"),
    ("<#C123|general>", "#general"),
    ("<#C123>", "#C123"),
    ("<@U123>", "@U123"),
    ("<@U123|bob>", "@bob"),
    ("<!here>", "@here"),
    ("<!subteam^S1|@admins>", "@admins"),
    ("&lt;poem&gt; &amp;&amp; true", "<poem> && true"),
    ("&amp;lt;", "&lt;"),
])
def test_markup_is_decoded(raw: str, meant: str) -> None:
    assert decode(raw) == meant


def test_escape_undoes_decoding() -> None:
    assert escape("a < b && c > d") == "a &lt; b &amp;&amp; c &gt; d"
    assert decode(escape("<@U1> &amp;")) == "<@U1> &amp;"


def event(**fields: object) -> dict:
    return {"type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.2",
            "text": "<@UBOT> status", **fields}


def test_parse_event_keeps_where_the_command_came_from() -> None:
    message = parse_event(event(thread_ts="1.0"), "UBOT")
    assert message is not None
    assert (message.user, message.channel, message.ts, message.thread_ts, message.text,
            message.is_direct) == ("U1", "C1", "1.2", "1.0", "status", False)
    dm = parse_event(event(type="message", channel_type="im", channel="D1", text="help"), "UBOT")
    assert dm is not None and dm.is_direct and dm.text == "help"


@pytest.mark.parametrize("fields", [
    {"bot_id": "B1"},
    {"subtype": "bot_message"},
    {"subtype": "message_changed"},
    {"subtype": "message_deleted"},
    {"edited": {"user": "U1", "ts": "1.3"}},
    {"user": "UBOT"},
    {"user": None},
    {"type": "message", "channel_type": "channel"},
    {"text": "no mention"},
])
def test_events_that_are_not_commands(fields: dict) -> None:
    assert parse_event(event(**fields), "UBOT") is None


def test_a_reminder_from_slackbot_is_a_command() -> None:
    message = parse_event(event(user="USLACKBOT", bot_id="B0",
                                text="Reminder: <@UBOT|chatops> status."), "UBOT")
    assert message is not None and message.text == "status"
