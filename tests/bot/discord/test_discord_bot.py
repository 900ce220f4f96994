"""The Discord platform end to end: signed HTTP interactions into the real Flask blueprint
(served by a real WSGI server), discord.py's REST client against a fake Discord API, the real
Dispatcher and the Sender delivering the reports."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from flask import Flask
from werkzeug.serving import make_server

from bot.discord import DiscordPlatform
from bot.discord.interactions import COMMANDS
from bot.discord.send import MESSAGE_LIMIT, fenced, text_messages
from bot.render import Piece
from chatops import identities
from chatops.commands import CommandHandler
from chatops.platform import Delivery, DeliveryError
from chatops.report import notice
from tests.support.fake_discord import APP_ID, FakeDiscord, Signer, interaction
from tests.support.serving import serve_in_thread
from tests.support.wait import generated

pytestmark = pytest.mark.slow  # whole stacks and real processes: seconds per test

TOKEN = "discord-bot-token-abcdef"
NO_MENTIONS = {"parse": []}


@pytest.fixture
def fake():
    server = FakeDiscord()
    yield server
    server.close()


class Site:
    def __init__(self, fake, service, platform, signer, url):
        self.fake, self.service, self.platform, self.signer, self.url = (
            fake, service, platform, signer, url)

    def post(self, payload, *, headers=None, raw: bytes | None = None):
        body = raw if raw is not None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url + "/discord/interactions", data=body, method="POST",
            headers=self.signer.headers(body) if headers is None else headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def command(self, name: str, **kwargs):
        return self.post(interaction(name, **kwargs))


@pytest.fixture
def discord_site(fake, make_service, run_backend):
    made = []

    def start(backend: bool = True, **env: str) -> Site:
        signer = Signer()
        service = make_service(DISCORD_BOT_TOKEN=TOKEN, DISCORD_APPLICATION_ID=APP_ID,
                               DISCORD_PUBLIC_KEY=signer.public_hex, DISCORD_API_URL=fake.url,
                               **env)
        handler = CommandHandler(service.settings, service.config, service.queue)
        app = Flask("test")
        platform = DiscordPlatform.create(service)
        app.register_blueprint(platform.http_blueprint(handler))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        serve_in_thread(server)
        if backend:
            run_backend(service, platform)
        made.append((server, platform))
        return Site(fake, service, platform, signer, f"http://127.0.0.1:{server.server_port}")

    yield start
    for server, platform in made:
        server.shutdown()
        platform.close()


def contents(calls):
    return [c.body.get("content") for c in calls]


ORIGINAL = f"/webhooks/{APP_ID}/tok-1/messages/@original"


def test_ping_and_signatures_are_checked_before_parsing(discord_site, fake):
    site = discord_site(backend=False)
    assert site.post({"type": 1}) == (200, {"type": 1})
    body = json.dumps({"type": 1}).encode()
    tampered = site.signer.headers(body)
    assert site.post(None, raw=b'{"type": 2}', headers=tampered)[0] == 401
    assert site.post(None, raw=b"not json at all", headers=tampered)[0] == 401
    other = Signer().headers(body)
    assert site.post(None, raw=body, headers=other)[0] == 401
    stale = site.signer.headers(body, timestamp=str(int(time.time()) - 3600))
    assert site.post(None, raw=body, headers=stale)[0] == 401
    assert site.post(None, raw=body, headers={"Content-Type": "application/json"}) == (
        401, "invalid request signature")
    assert site.post(None, raw=b"not json at all")[0] == 400  # signed, but not JSON
    assert fake.sent() == []


def test_run_defers_then_edits_and_the_report_follows(discord_site, fake):
    site = discord_site()
    assert site.command("run", options={"command": "example say hello Bob."}) == (
        200, {"type": 5})
    edit, report = fake.wait_sent(2)
    assert (edit.method, edit.path, edit.body) == (
        "PATCH", ORIGINAL, {"content": "Job 1 is queued; its report will follow here.",
                            "allowed_mentions": NO_MENTIONS, "tts": False})
    assert (report.method, report.path, report.body) == (
        "POST", "/channels/777/messages", {"content": "Hello Bob", "allowed_mentions":
                                           NO_MENTIONS, "tts": False, "nonce": "1.re.0",
                                           "enforce_nonce": True})  # a resend: one message
    assert report.auth == f"Bot {TOKEN}"
    job = site.service.queue.get(1)
    assert (job.platform, job.channel, job.requested_by) == ("discord", "777", "4242")
    assert identities.lookup(site.service.queue.engine, "discord", "4242").display_name == "Alice"


def test_help_and_status(discord_site, fake):
    site = discord_site(backend=False)
    assert site.command("status")[1] == {"type": 5}
    assert contents(fake.wait_sent(1)) == [
        "Nothing is running or scheduled, and no jobs are suppressed."]
    site.command("help", token="tok-2")
    help_call = fake.wait_sent(2)[1]
    assert help_call.path == f"/webhooks/{APP_ID}/tok-2/messages/@original"
    assert help_call.body["content"] == (
        "Namespaces (`<namespace> help` lists their commands):\n"
        "• `example`: Example jobs\n"
        "• `secret` 🔒: Restricted jobs\n"
        "Built-in commands: `status`, `cancel <job id>`, `logs <job id> [stderr]`, "
        "`help [namespace]`, `notify me`, `schedules`, `pause schedule <namespace> <name>`, "
        "`resume schedule <namespace> <name>`, `cluster status [name]`, "
        "`cluster history <name> [24h|7d]`.")
    site.command("help", options={"namespace": "example"}, token="tok-3")
    assert fake.wait_sent(3)[2].body["content"].startswith(
        "Commands in `example` — Example jobs:\n• `example say hello [name]`: say hello\n")


def test_logs_through_run(discord_site, fake):
    site = discord_site()
    site.command("run", options={"command": "example say hello Bob"})
    fake.wait_sent(1, "/channels/")
    site.command("run", options={"command": "logs 1"}, token="tok-2")
    (edit,) = fake.wait_sent(1, f"/webhooks/{APP_ID}/tok-2")
    assert (edit.method, edit.path, edit.body["content"]) == (
        "PATCH", f"/webhooks/{APP_ID}/tok-2/messages/@original",
        "The end of job 1's stdout:\n```\nHello Bob\n```")
    # A long log: the caption edits the original, the log follows as an attachment.
    site.platform.answer_interaction("tok-3", [Piece("text", "The end:"),
                                               Piece("code", "L" * 2500)])
    first, attached = fake.wait_sent(2, f"/webhooks/{APP_ID}/tok-3")
    assert (first.method, first.body["content"]) == ("PATCH", "The end:")
    assert (attached.method, attached.path) == ("POST", f"/webhooks/{APP_ID}/tok-3")
    assert attached.body["content"] == "The output is 2,500 characters long, so it is attached."
    assert attached.files["files[0]"] == ("output.txt", b"L" * 2500)


def test_mailuser_answers_privately_and_records_the_opt_in(discord_site, fake):
    site = discord_site(backend=False)
    assert site.command("mailuser", channel="31337") == (200, {"type": 4, "data": {
        "content": "To get Slurm's notifications about your jobs in this channel, submit them "
                   "with `--mail-user=discord:31337` (and `--mail-type=END,FAIL`, or `ALL`, "
                   "to choose which).",
        "flags": 64, "allowed_mentions": NO_MENTIONS}})
    engine = site.service.queue.engine
    assert identities.is_opted_in(engine, "discord", "31337")
    assert identities.target(engine, "discord", "31337").user_id == "4242"
    assert fake.sent() == []


def test_restricted_namespace_needs_a_trusted_guild(discord_site, fake):
    site = discord_site(DISCORD_TRUSTED_GUILDS="888")
    site.command("run", options={"command": "secret hello"}, guild=None, channel="5")
    assert fake.wait_sent(1)[0].body["content"].startswith(
        "Sorry, `secret` is restricted to full members")
    site.command("run", options={"command": "secret hello"}, token="tok-2")
    assert contents(fake.wait_sent(3)[1:]) == [
        "Job 1 is queued; its report will follow here.", "secret hello"]


def test_allowed_users_are_matched_by_id_never_by_a_display_name(discord_site, fake):
    """A signed interaction from user 666 whose names copy the allowed user's id is refused."""
    site = discord_site(DISCORD_TRUSTED_GUILDS="888")
    forged = interaction("run", options={"command": "secret hello"}, user_id="666")
    forged["member"]["user"].update(username="discord:4242", global_name="discord:4242")
    site.post(forged)
    assert contents(fake.wait_sent(1)) == [
        "Sorry, `secret` is limited to the users listed for it, and you (discord:666) are not "
        "one of them. Ask an admin to add you to its `allowed_users`."]
    assert site.service.queue.history(5) == []
    site.command("run", options={"command": "secret hello"}, token="tok-2", username="mallory")
    assert contents(fake.wait_sent(3)[1:]) == [
        "Job 1 is queued; its report will follow here.", "secret hello"]


def test_message_splitting_at_2000():
    assert text_messages("y" * MESSAGE_LIMIT) == ["y" * MESSAGE_LIMIT]
    assert text_messages("y" * (MESSAGE_LIMIT + 1)) == ["y" * MESSAGE_LIMIT, "y"]
    lines = "\n".join(["z" * 999, "z" * 999, "z" * 5])
    assert text_messages(lines) == ["z" * 999 + "\n" + "z" * 999, "z" * 5]
    code = "c" * 3000
    parts = text_messages(f"before\n```\n{code}\n```\nafter")
    assert [len(p) for p in parts] == [6, 2000, 1022]  # "before", 1992 + fence, rest + "after"
    assert parts[1] == fenced("c" * 1992) and parts[2] == fenced("c" * 1008) + "\nafter"
    assert fenced("a```b") == "```\na`\u200b``b\n```"


@pytest.mark.parametrize("size, expected_messages", [(2000, 1), (2003, 2), (10000, 5)])
def test_text_reports_split_on_lines(discord_site, fake, size, expected_messages):
    site = discord_site()
    site.command("run", options={"command": f"example text {size}"})
    calls = fake.wait_sent(expected_messages, "/channels/")
    time.sleep(0.2)
    assert len(fake.sent("/channels/")) == expected_messages
    assert all(len(c.body["content"]) <= MESSAGE_LIMIT for c in calls)
    assert "\n".join(contents(calls)) == generated(size).rstrip("\n")


def test_code_file_blocks_and_failure_reports(discord_site, fake):
    site = discord_site()
    site.command("run", options={"command": "example code 1993"})  # 1992 characters: fits
    (code,) = fake.wait_sent(1, "/channels/")
    assert code.body["content"] == fenced(generated(1993).rstrip())
    site.command("run", options={"command": "example code 1994"}, token="tok-2")
    attached = fake.wait_sent(2, "/channels/")[1]
    assert attached.body["content"] == "The output is 1,993 characters long, so it is attached."
    assert attached.files["files[0]"] == ("example_code-2.txt", generated(1994).rstrip().encode())
    assert attached.body["attachments"] == [{"id": 0, "filename": "example_code-2.txt"}]
    site.command("run", options={"command": "example file 300"}, token="tok-3")
    report = fake.wait_sent(3, "/channels/")[2]
    assert report.body["content"] == "`example_file` (job 3) succeeded; its output is attached."
    assert report.files["files[0]"] == ("example_file-3.txt", generated(300).encode())
    site.command("run", options={"command": "example blocks"}, token="tok-4")
    assert fake.wait_sent(4, "/channels/")[3].body["content"] == (
        "Disk <usage> & more\n———\nAll `fine`")
    site.command("run", options={"command": "example fail"}, token="tok-5")
    assert fake.wait_sent(5, "/channels/")[4].body["content"] == (
        "`example_fail` (job 5) failed with exit code 3.\n"
        "Last lines of stderr:\n```\noops\n```\n"
        "See the logs with `logs 5` (stdout) or `logs 5 stderr`.")
    site.command("run", options={"command": "example quiet"}, token="tok-6")
    fake.wait_sent(6, "/webhooks/")
    time.sleep(0.5)
    assert len(fake.sent("/channels/")) == 5  # a quiet success says nothing


def test_rate_limits(discord_site, fake):
    site = discord_site(backend=False)
    platform = site.platform
    def hello(delivery_id: int) -> Delivery:
        return Delivery(id=delivery_id, platform="discord", channel="777", thread=None,
                        message=None, is_direct=False, payload=notice("hi"), attempts=1)

    fake.fail_next("/channels/777/messages", 429, retry_after=0.3)  # short: waited out in place
    platform.deliver(hello(1))
    first, second = fake.sent("/channels/")
    assert second.at - first.at >= 0.3 and second.body["content"] == "hi"
    fake.fail_next("/channels/777/messages", 429, retry_after=5.0)  # long: rescheduled
    with pytest.raises(DeliveryError) as caught:
        platform.deliver(hello(2))
    assert caught.value.retry_after == 5.0 and not caught.value.permanent
    fake.fail_next("/channels/777/messages", 403)
    with pytest.raises(DeliveryError) as caught:
        platform.deliver(hello(3))
    assert caught.value.permanent


def test_outbox_waits_retry_after_and_resumes(discord_site, fake):
    site = discord_site()
    text = generated(3000).rstrip("\n")  # two messages
    fake.fail_next("/channels/777/messages", 429, retry_after=1.5, after=1)
    site.service.queue.add_delivery("discord", notice(text), channel="777")
    calls = fake.wait_sent(3, "/channels/")
    assert calls[2].at - calls[1].at >= 1.5
    # The first part arrived; only the refused second part is sent again.
    assert calls[0].body["content"] != calls[1].body["content"] == calls[2].body["content"]
    assert "\n".join(contents([calls[0], calls[2]])) == text
    time.sleep(0.3)
    assert len(fake.sent("/channels/")) == 3


def test_register_commands(discord_site, fake):
    site = discord_site(backend=False)
    site.platform.register_commands()
    (call,) = fake.sent()
    assert (call.method, call.path, call.body) == (
        "PUT", f"/applications/{APP_ID}/commands", COMMANDS)
    assert [c["name"] for c in COMMANDS] == ["run", "help", "status", "mailuser"]


def test_chatops_bot_discord_register(make_service, fake):
    import subprocess
    import sys

    service = make_service(DISCORD_BOT_TOKEN=TOKEN, DISCORD_APPLICATION_ID=APP_ID,
                           DISCORD_PUBLIC_KEY=Signer().public_hex, DISCORD_API_URL=fake.url)
    done = subprocess.run([sys.executable, "-m", "chatops.cli", "bot", "discord", "--register"],
                          env=dict(service.settings.environ), capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout) == (0, "registered: /run, /help, /status, /mailuser\n")
    assert TOKEN not in done.stderr
    (call,) = fake.sent()
    assert (call.method, call.path, call.body) == ("PUT", f"/applications/{APP_ID}/commands",
                                                   COMMANDS)


def test_the_service_web_app_serves_both_platforms(make_service, fake):
    from chatops.cli import build_web_app

    signer = Signer()
    service = make_service(DISCORD_BOT_TOKEN=TOKEN, DISCORD_APPLICATION_ID=APP_ID,
                           DISCORD_PUBLIC_KEY=signer.public_hex, DISCORD_API_URL=fake.url,
                           TELEGRAM_BOT_TOKEN="1:abc", TELEGRAM_API_URL="http://127.0.0.1:9",
                           TELEGRAM_WEBHOOK_URL="https://x.example/telegram/hook-path")
    client = build_web_app(service).test_client()
    body = b'{"type": 1}'
    answer = client.post("/discord/interactions", data=body, headers=signer.headers(body))
    assert (answer.status_code, answer.get_json()) == (200, {"type": 1})
    assert client.post("/discord/interactions", data=body).status_code == 401
    assert client.post("/telegram/hook-path", json={"update_id": 1}).status_code == 401
