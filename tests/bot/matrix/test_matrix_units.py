"""The Matrix bot's pure parts: which messages are commands, and what notices look like."""

from __future__ import annotations

import socket

import pytest
from nio import RoomMessageText

from bot.matrix import MatrixConnector
from bot.matrix.client import html_body, is_configured, new_client, notification_content
from bot.matrix.inbound import command_of, mail_user_content
from bot.matrix.send import MESSAGE_LIMIT, text_contents
from chatops.platform import DeliveryError
from chatops.settings import SetupError, load_settings

BOT = "@chatops:example.org"


def message(body: str, mentions: list[str] | None = None) -> RoomMessageText:
    content: dict = {"msgtype": "m.text", "body": body}
    if mentions is not None:
        content["m.mentions"] = {"user_ids": mentions}
    return RoomMessageText.from_dict({
        "type": "m.room.message", "event_id": "$e", "sender": "@alice:example.org",
        "origin_server_ts": 1, "content": content})


@pytest.mark.parametrize(("body", "mentions", "command"), [
    ("!run example say hello Bob", None, "example say hello Bob"),
    ("!RUN  status", None, "status"),
    ("!help example", None, "help example"),
    ("!status", None, "status"),
    ("!logs 12 stderr", None, "logs 12 stderr"),
    ("chatops: example say hello", None, "example say hello"),
    ("@chatops:example.org, status", None, "status"),
    ("ChatOps status", None, "status"),
    ("please, chatops status", [BOT], "please, chatops status"),
    ("hey @chatops:example.org status", [BOT], "hey status"),
    ("chatops:example.org status", None, None),  # a server name, not the bot
    ("chatops", None, ""),
    ("!ban alice", None, None),  # another bot's command
    ("chatopsy status", None, None),
    ("example say hello", None, None),  # talk between people
    ("example say hello", ["@bob:example.org"], None),
    ("", None, None),
])
def test_command_of(body, mentions, command):
    assert command_of(message(body, mentions), BOT) == command


def test_notification_content_escapes_every_value():
    assert notification_content("Job 7 & <x>", {"<k>": "a<b>", "n": 1}) == {
        "msgtype": "m.notice", "format": "org.matrix.custom.html",
        "body": "Job 7 & <x>\n<k>: a<b>\nn: 1",
        "formatted_body": "<strong>Job 7 &amp; &lt;x&gt;</strong><br>&lt;k&gt;: a&lt;b&gt;"
                          "<br>n: 1"}


def test_mail_user_notice_names_the_room():
    content = mail_user_content("!abc")
    assert content["msgtype"] == "m.notice"
    assert "\n--mail-user=matrix:!abc\n" in content["body"]
    assert "<pre><code>--mail-user=matrix:!abc</code></pre>" in content["formatted_body"]


def test_text_contents_fences_and_limits():
    contents = text_contents("Look: `a<b`\n```\nx < y\n```\nend")
    assert [c["formatted_body"] for c in contents] == [
        "Look: <code>a&lt;b</code>", "<pre><code>x &lt; y</code></pre>", "end"]
    assert [c["body"] for c in contents] == ["Look: `a<b`", "x < y", "end"]
    long = "\n".join("y" * 99 for _ in range(400))  # 39 999 characters
    parts = text_contents(long)
    assert all(len(p["body"]) <= MESSAGE_LIMIT for p in parts) and len(parts) == 3
    assert "\n".join(p["body"] for p in parts) == long


def test_settings():
    base = {"MATRIX_HOMESERVER_URL": "http://127.0.0.1:1/", "MATRIX_USER_ID": BOT}
    assert not is_configured(load_settings(base))
    assert not is_configured(load_settings({**base, "MATRIX_ACCESS_TOKEN": ""}))
    assert is_configured(load_settings({**base, "MATRIX_PASSWORD": "pw"}))
    with pytest.raises(SetupError, match="MATRIX_ACCESS_TOKEN or MATRIX_PASSWORD"):
        new_client(load_settings(base))


def test_an_unreachable_homeserver_is_a_transient_failure():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector = MatrixConnector(load_settings({
        "MATRIX_HOMESERVER_URL": f"http://127.0.0.1:{port}", "MATRIX_USER_ID": BOT,
        "MATRIX_ACCESS_TOKEN": "syt_secret"}))
    try:
        with pytest.raises(DeliveryError, match="cannot reach the Matrix homeserver") as failed:
            connector.send("!room", {"text": "hello"})
        assert not failed.value.permanent and failed.value.retry_after is None
        assert "syt_secret" not in str(failed.value)
    finally:
        connector.close()


def test_html_body_keeps_a_fragment_and_cuts_a_document_to_its_body():
    assert html_body("<b>x</b>") == "<b>x</b>"
    assert html_body("<!DOCTYPE html>\n<html><BODY class='a'>\n<h3>t</h3>\n</body></html>") \
        == "<h3>t</h3>"
