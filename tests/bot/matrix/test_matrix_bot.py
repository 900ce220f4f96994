"""The Matrix bot and connector against a real Synapse: invite → join → --mail-user → opt-in →
a notification as m.notice with HTML → everyone leaves → the bot leaves and opts out; commands
and job reports through the real Dispatcher and the Sender."""

from __future__ import annotations

import time
import urllib.request

import pytest

from bot.matrix import MatrixConnector, MatrixPlatform
from chatops import identities
from chatops.notify.render import render
from chatops.platform import Delivery, DeliveryError
from chatops.report import notice
from chatops.settings import load_settings
from tests.support.wait import generated, wait_until

from .conftest import PASSWORD, make_service

pytestmark = pytest.mark.slow  # needs the test cluster, Synapse or a browser


def test_invite_opt_in_notification_and_leaving_alone(users, stack, synapse):
    bot, alice = users("chatops"), users("alice")
    running = stack(MATRIX_USER_ID=bot.user_id, MATRIX_PASSWORD=PASSWORD)

    room_id = alice.run(alice.client.room_create(name="jobs", invite=[bot.user_id])).room_id
    assert room_id.startswith("!") and ":" not in room_id  # room version 12: no :server

    wait_until(lambda: identities.is_opted_in(running.engine, "matrix", room_id), what="opt-in")
    assert identities.target(running.engine, "matrix", room_id).user_id == alice.user_id
    [hello] = alice.messages_from(room_id, bot.user_id, 1)
    assert hello["msgtype"] == "m.notice"
    assert hello["format"] == "org.matrix.custom.html"
    assert f"--mail-user=matrix:{room_id}\n" in hello["body"]
    assert f"<pre><code>--mail-user=matrix:{room_id}</code></pre>" in hello["formatted_body"]

    settings = load_settings({"MATRIX_HOMESERVER_URL": synapse.url,
                              "MATRIX_USER_ID": bot.user_id, "MATRIX_ACCESS_TOKEN": bot.token})
    assert MatrixConnector.is_configured(settings)
    connector = MatrixConnector(settings)
    try:
        connector.notify(room_id, "Job 42 <train> FAILED",
                         {"Job name": "<b>train</b> & test", "Exit code": 3},
                         text="Ask for more memory: `--mem=8G`")
        # what the notification pipeline renders (its matrix templates) goes out as it is
        payload = render("matrix", room_id, {
            "title": "Job 43 <eval> COMPLETED", "job_name": "<i>eval</i>", "user": "alice",
            "hints": ["Ask for less memory: --mem=2G"]})
        connector.send(room_id, payload)
    finally:
        connector.close()
    notice, rendered = alice.messages_from(room_id, bot.user_id, 3)[1:]
    assert rendered["msgtype"] == "m.notice" and rendered["format"] == "org.matrix.custom.html"
    assert rendered["body"] == payload["text"] and "Name:      <i>eval</i>" in rendered["body"]
    assert rendered["formatted_body"].startswith("<h3>Job 43 &lt;eval&gt; COMPLETED</h3>")
    assert "<td>&lt;i&gt;eval&lt;/i&gt;</td>" in rendered["formatted_body"]
    assert "<html" not in rendered["formatted_body"]
    assert notice == {
        "msgtype": "m.notice",
        "body": "Job 42 <train> FAILED\nJob name: <b>train</b> & test\nExit code: 3\n"
                "Ask for more memory: `--mem=8G`",
        "format": "org.matrix.custom.html",
        "formatted_body": "<strong>Job 42 &lt;train&gt; FAILED</strong><br>"
                          "Job name: &lt;b&gt;train&lt;/b&gt; &amp; test<br>Exit code: 3<br>"
                          "Ask for more memory: <code>--mem=8G</code>",
    }

    alice.run(alice.client.room_leave(room_id))
    wait_until(lambda: not identities.is_opted_in(running.engine, "matrix", room_id),
               what="the opt-out")
    assert identities.target(running.engine, "matrix", room_id).opted_out_at is not None
    wait_until(lambda: room_id not in running.joined_rooms(), what="the bot leaving")


def test_kicking_the_bot_opts_the_room_out(users, stack):
    bot, alice = users("chatops"), users("alice")
    running = stack(MATRIX_USER_ID=bot.user_id, MATRIX_ACCESS_TOKEN=bot.token)
    room_id = alice.run(alice.client.room_create(invite=[bot.user_id])).room_id
    wait_until(lambda: identities.is_opted_in(running.engine, "matrix", room_id), what="opt-in")
    alice.run(alice.client.room_kick(room_id, bot.user_id, reason="no more mail"))
    wait_until(lambda: not identities.is_opted_in(running.engine, "matrix", room_id),
               what="the opt-out")
    assert identities.target(running.engine, "matrix", room_id).opted_out_at is not None


def test_commands_and_job_reports(users, stack, synapse):
    bot, alice = users("chatops"), users("alice")
    running = stack(MATRIX_USER_ID=bot.user_id, MATRIX_ACCESS_TOKEN=bot.token)
    room_id = alice.run(alice.client.room_create(invite=[bot.user_id])).room_id
    alice.messages_from(room_id, bot.user_id, 1)  # the --mail-user notice: the bot is in

    def say(text: str) -> str:
        return alice.run(alice.client.room_send(room_id, "m.room.message",
                                                {"msgtype": "m.text", "body": text})).event_id

    request = say("!run example say hello Bob")
    report = alice.messages_from(room_id, bot.user_id, 2)[1]
    assert report["msgtype"] == "m.notice"
    assert report["body"] == "Hello Bob"
    assert report["formatted_body"] == "Hello Bob"
    assert "m.relates_to" not in report  # alice and the bot alone: a direct chat, no reply
    reactions = wait_until(lambda: [e["content"]["m.relates_to"] for e in alice.events(room_id)
                                    if e["type"] == "m.reaction"], what="the 👀")
    assert reactions == [{"rel_type": "m.annotation", "event_id": request, "key": "👀"}]
    assert identities.lookup(running.engine, "matrix", alice.user_id) is not None

    quiet = say("!run example quiet")  # succeeds without a report: 👀, then 👍
    wait_until(lambda: [e for e in alice.events(room_id) if e["type"] == "m.reaction"
                        and e["content"]["m.relates_to"] == {
                            "rel_type": "m.annotation", "event_id": quiet, "key": "👍"}],
               what="the quiet success's 👍")

    say(f"{bot.user_id.split(':')[0][1:]}: example code 250")  # addressed by name
    code = alice.messages_from(room_id, bot.user_id, 3)[2]
    assert code["body"] == generated(250).rstrip("\n")
    assert code["formatted_body"] == f"<pre><code>{generated(250).rstrip()}</code></pre>"

    say("!run example file 300")
    file_event = wait_until(lambda: [m for m in alice.messages_from(room_id, bot.user_id, 4)
                                     if m["msgtype"] == "m.file"], what="the file")[0]
    assert file_event["body"] == file_event["filename"] == "example_file-4.txt"  # job 4
    assert file_event["info"] == {"size": 300, "mimetype": "text/plain"}
    server, media = file_event["url"].removeprefix("mxc://").split("/")
    download = urllib.request.Request(
        f"{synapse.url}/_matrix/client/v1/media/download/{server}/{media}",
        headers={"Authorization": f"Bearer {alice.token}"})
    with urllib.request.urlopen(download, timeout=10) as response:
        assert response.read().decode() == generated(300)

    say("!run example blocks")
    blocks = alice.messages_from(room_id, bot.user_id, 6)[5]
    assert blocks == {"msgtype": "m.notice", "format": "org.matrix.custom.html",
                      "body": "Disk <usage> & more\n———\nAll `fine`",
                      "formatted_body": "Disk &lt;usage&gt; &amp; more<br>———<br>All "
                                        "<code>fine</code>"}

    count = len(alice.messages_from(room_id, bot.user_id, 1))
    say("just chatting about hello")  # not addressed to the bot: no answer
    say("!help example")
    help_text = alice.messages_from(room_id, bot.user_id, count + 1)[count]
    assert "say hello" in help_text["body"] and "`" in help_text["body"]
    assert "<code>" in help_text["formatted_body"] and "`" not in help_text["formatted_body"]
    assert len(alice.messages_from(room_id, bot.user_id, count + 1)) == count + 1


def test_rate_limit_and_refusals(users, synapse):
    bot, admin = users("chatops"), users("admin", admin=True)
    room_id = bot.run(bot.client.room_create()).room_id
    settings = load_settings({"MATRIX_HOMESERVER_URL": synapse.url,
                              "MATRIX_USER_ID": bot.user_id, "MATRIX_PASSWORD": PASSWORD})
    connector = MatrixConnector(settings)
    try:
        other = admin.run(admin.client.room_create()).room_id  # the bot is not in it
        with pytest.raises(DeliveryError) as forbidden:
            connector.send(other, {"text": "hello"})
        assert forbidden.value.permanent and "M_FORBIDDEN" in str(forbidden.value)
        with pytest.raises(DeliveryError, match="not a Matrix room id") as not_room:
            connector.send("#jobs:localhost", {"text": "hello"})
        assert not_room.value.permanent

        # One message a second for the bot: the homeserver answers M_LIMIT_EXCEEDED.
        synapse.api("POST", f"/_synapse/admin/v1/users/{bot.user_id}/override_ratelimit",
                    {"messages_per_second": 1, "burst_count": 1}, token=admin.token)
        with pytest.raises(DeliveryError) as limited:
            for _ in range(5):
                connector.send(room_id, {"text": "again"})
        assert limited.value.retry_after is not None and 0 < limited.value.retry_after <= 1
        assert not limited.value.permanent
        assert "M_LIMIT_EXCEEDED" in str(limited.value)
    finally:
        connector.close()


def test_a_rate_limited_report_resumes_after_the_parts_that_arrived(users, synapse, tmp_path):
    bot, admin = users("chatops"), users("admin", admin=True)
    room_id = bot.run(bot.client.room_create()).room_id
    synapse.api("POST", f"/_synapse/admin/v1/users/{bot.user_id}/override_ratelimit",
                {"messages_per_second": 1, "burst_count": 1}, token=admin.token)
    service = make_service(tmp_path, {"MATRIX_HOMESERVER_URL": synapse.url,
                                      "MATRIX_USER_ID": bot.user_id,
                                      "MATRIX_ACCESS_TOKEN": bot.token})
    platform = MatrixPlatform.create(service)
    delivery = Delivery(id=1, platform="matrix", channel=room_id, thread=None, message=None,
                        is_direct=True, attempts=1, job_id=None, payload=notice(
                            "one\n```\ntwo < three\n```\nfour"))
    waits = []
    try:
        for _ in range(10):
            try:
                platform.deliver(delivery)
                break
            except DeliveryError as exc:  # what the outbox does: wait as told, then retry
                assert exc.retry_after is not None and not exc.permanent
                waits.append(exc.retry_after)
                time.sleep(exc.retry_after)
        else:
            raise AssertionError("never delivered")
    finally:
        platform.close()
    assert waits  # the homeserver did say M_LIMIT_EXCEEDED
    sent = [(m["body"], m["formatted_body"]) for m in bot.messages_from(room_id, bot.user_id, 3)]
    assert sent == [("one", "one"), ("two < three", "<pre><code>two &lt; three</code></pre>"),
                    ("four", "four")]
