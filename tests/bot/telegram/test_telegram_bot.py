"""The Telegram platform end to end: the real python-telegram-bot Application long-polling a
fake Bot API, the real Dispatcher running jobs, the real Sender delivering reports."""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask
from sqlalchemy import select

from bot.sender import Sender
from bot.telegram import TelegramPlatform
from chatops import identities, outbound
from chatops.commands import CommandHandler
from chatops.db import deliveries
from chatops.platform import Delivery, DeliveryError
from chatops.report import notice
from tests.support.fake_telegram import (
    BOT_ID,
    FakeTelegram,
    group_message,
    private_message,
    user,
)
from tests.support.wait import generated, wait_until

pytestmark = pytest.mark.slow  # whole stacks and real processes: seconds per test

TOKEN = "123456:TEST-token-abcdef"


@pytest.fixture
def fake():
    server = FakeTelegram(TOKEN)
    yield server
    server.close()


@pytest.fixture
def telegram(fake, make_service, run_backend):
    """(fake API, service, platform) with polling, dispatcher and outbox running."""
    platforms = []

    def start(serve: bool = True, **env: str):
        service = make_service(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=fake.url, **env)
        platform = TelegramPlatform.create(service)
        platforms.append(platform)
        stop = threading.Event()
        thread = None
        if serve:
            handler = CommandHandler(service.settings, service.config, service.queue)
            thread = threading.Thread(target=platform.serve, args=(handler, stop), daemon=True)
            thread.start()
            wait_until(lambda: fake.offsets, what="the first getUpdates")
        run_backend(service, platform)
        platform._test_stop = (stop, thread)
        return service, platform

    yield start
    for platform in platforms:
        stop, thread = platform._test_stop
        stop.set()
        if thread:
            thread.join(10)
        platform.close()


def texts(calls):
    return [c.params.get("text") for c in calls]


@pytest.fixture
def reactions(fake):
    """(chat, message, emoji) of the reactions set so far, after at least ``count``."""
    def get(count: int):
        calls = fake.wait_sent(count, 15, "setMessageReaction")
        return [(c.params["chat_id"], c.params["message_id"], c.params["reaction"][0]["emoji"])
                for c in calls]
    return get


def test_private_chat_plain_text_and_run_command(telegram, fake, reactions):
    service, _ = telegram()
    fake.push(private_message("example say hello Bob", message_id=7))
    calls = fake.wait_sent(1)
    assert [(c.method, c.params["chat_id"], c.params["parse_mode"]) for c in calls] == [
        ("sendMessage", "42", "HTML")]
    assert texts(calls) == ["Hello Bob"]
    assert "reply_parameters" not in calls[0].params  # a private chat needs no reply threading
    assert reactions(1) == [("42", "7", "👀")]  # accepted: a reaction, not a message
    fake.push(private_message("/run example say hello Carol.", message_id=8))
    assert texts(fake.wait_sent(2)[1:]) == ["Hello Carol"]
    row = identities.lookup(service.queue.engine, "telegram", "42")
    assert row.display_name == "alice"
    job = service.queue.get(1)
    assert (job.platform, job.channel, job.requested_by, job.message) == (
        "telegram", "42", "42", "7")


def test_group_only_answers_commands_and_mentions(telegram, fake, reactions):
    telegram()
    fake.push(group_message("hello everyone, lunch?", message_id=1))
    fake.push(group_message("example say hello Bob", message_id=2))
    fake.push(group_message("/help@some_other_bot", message_id=3))
    last = fake.push(group_message("/status", message_id=4))
    calls = fake.wait_sent(1)
    wait_until(lambda: max(fake.offsets) > last, what="the updates to be confirmed")
    assert len(fake.sent()) == 1  # only /status was for the bot
    assert calls[0].params == {
        "chat_id": "-1001234", "parse_mode": "HTML", "link_preview_options": {"is_disabled": True},
        "reply_parameters": {"message_id": 4, "allow_sending_without_reply": True},
        "text": "Nothing is running or scheduled, and no jobs are suppressed."}
    fake.push(group_message("@chatops_test_bot example say hello Dan", message_id=5))
    fake.wait_sent(2)  # the job's report, before the next one (jobs of a type queue up)
    fake.push(group_message("/run@chatops_test_bot example say hello Eve", message_id=6))
    calls = fake.wait_sent(3)[1:]
    by_text = {c.params["text"]: c.params["reply_parameters"]["message_id"] for c in calls}
    assert by_text == {"Hello Dan": 5, "Hello Eve": 6}
    assert reactions(2) == [("-1001234", "5", "👀"), ("-1001234", "6", "👀")]


def test_reply_to_the_bot_in_a_group_is_a_command(telegram, fake):
    telegram()
    bot_message = {"message_id": 77, "date": 1, "text": "earlier",
                   "chat": {"id": -1001234, "type": "supergroup", "title": "HPC team"},
                   "from": {"id": BOT_ID, "is_bot": True, "first_name": "ChatOps"}}
    fake.push(group_message("status", message_id=9, reply_to_message=bot_message))
    assert texts(fake.wait_sent(1)) == [
        "Nothing is running or scheduled, and no jobs are suppressed."]


def test_help_and_unknown_text(telegram, fake):
    telegram()
    fake.push(private_message("/help"))
    help_text = fake.wait_sent(1)[0].params["text"]
    assert help_text == (
        "Namespaces (<code>&lt;namespace&gt; help</code> lists their commands):\n"
        "• <code>example</code>: Example jobs\n"
        "• <code>secret</code> 🔒: Restricted jobs\n"
        "Built-in commands: <code>status</code>, <code>cancel &lt;job id&gt;</code>, "
        "<code>logs &lt;job id&gt; [stderr]</code>, <code>help [namespace]</code>, "
        "<code>notify me</code>, <code>schedules</code>, "
        "<code>pause schedule &lt;namespace&gt; &lt;name&gt;</code>, "
        "<code>resume schedule &lt;namespace&gt; &lt;name&gt;</code>, "
        "<code>cluster status [name]</code>, "
        "<code>cluster history &lt;name&gt; [24h|7d]</code>.")
    fake.push(private_message("example help"))
    assert fake.wait_sent(2)[1].params["text"].startswith(
        "Commands in <code>example</code> — Example jobs:\n"
        "• <code>example say hello [name]</code>: say hello\n")
    fake.push(private_message("make coffee"))
    assert fake.wait_sent(3)[2].params["text"].startswith(
        "Sorry, I didn't understand <code>make coffee</code>.\nNamespaces")


def test_start_and_stop_record_the_notification_opt_in(telegram, fake):
    service, _ = telegram()
    engine = service.queue.engine
    fake.push(group_message("/start@chatops_test_bot", message_id=3))
    start = fake.wait_sent(1)[0].params
    assert start["chat_id"] == "-1001234"
    assert start["text"] == (
        "To get Slurm's notifications about your jobs in this chat, submit them with:\n"
        "<pre>--mail-user=telegram:-1001234</pre>\n"
        "(and <code>--mail-type=END,FAIL</code>, or <code>ALL</code>, to choose which). "
        "Send /stop to turn them off. /help lists what else I can do.")
    assert identities.is_opted_in(engine, "telegram", "-1001234")
    assert identities.target(engine, "telegram", "-1001234").user_id == "42"
    fake.push(group_message("/stop", message_id=4))
    assert fake.wait_sent(2)[1].params["text"] == (
        "This chat will no longer get Slurm notifications; /start turns them on again.")
    assert not identities.is_opted_in(engine, "telegram", "-1001234")
    assert identities.target(engine, "telegram", "-1001234").opted_out_at is not None
    fake.push(private_message("/start"))
    assert "<pre>--mail-user=telegram:42</pre>" in fake.wait_sent(3)[2].params["text"]


def test_restricted_namespace_needs_a_trusted_chat(telegram, fake):
    telegram(TELEGRAM_TRUSTED_CHATS="-1001234")
    fake.push(private_message("secret hello"))
    assert fake.wait_sent(1)[0].params["text"].startswith(
        "Sorry, <code>secret</code> is restricted to full members")
    fake.push(group_message("/run secret hello", message_id=2))
    assert texts(fake.wait_sent(2)[1:]) == ["secret hello"]


def test_allowed_users_are_matched_by_id_never_by_a_name(telegram, fake):
    """User 777 whose first name copies the allowed user's id (and who has no username) is
    refused; user 42 passes whatever their name."""
    telegram(TELEGRAM_TRUSTED_CHATS="777,42")
    forged = {"id": 777, "is_bot": False, "first_name": "telegram:42"}
    fake.push(private_message("secret hello", chat_id=777, sender=forged))
    assert texts(fake.wait_sent(1)) == [
        "Sorry, <code>secret</code> is limited to the users listed for it, and you "
        "(telegram:777) are not one of them. Ask an admin to add you to its "
        "<code>allowed_users</code>."]
    fake.push(private_message("secret hello", sender=user(42, "mallory"), message_id=2))
    assert texts(fake.wait_sent(2)[1:]) == ["secret hello"]


@pytest.mark.parametrize("size, expected_messages", [(4097, 1), (4098, 2), (20000, 5)])
def test_text_reports_split_on_lines_at_4096(telegram, fake, size, expected_messages):
    telegram()
    fake.push(private_message(f"example text {size}"))
    calls = fake.wait_sent(expected_messages)
    reports = [c.params["text"] for c in calls]
    assert len(reports) == expected_messages
    assert all(len(text) <= 4096 for text in reports)
    assert "\n".join(reports) == generated(size).rstrip("\n")
    assert all(not r.startswith("\n") and not r.endswith("\n") for r in reports)


def test_very_long_text_and_code_become_documents(telegram, fake):
    telegram()
    fake.push(private_message("example text 20100"))  # six messages' worth
    document = fake.wait_sent(1)[0]
    assert document.method == "sendDocument"
    assert document.params["caption"] == (
        "The message is 20,099 characters long, so it is attached.")
    assert document.files["document"] == ("example_text-1.txt",
                                          generated(20100).rstrip("\n").encode())
    fake.push(private_message("example code 4097"))
    code = fake.wait_sent(2)[1]
    assert code.method == "sendMessage"
    assert code.params["text"] == f"<pre>{generated(4097).rstrip()}</pre>"
    fake.push(private_message("example code 4098"))
    code = fake.wait_sent(3)[2]
    assert code.method == "sendDocument"
    assert code.files["document"] == ("example_code-3.txt", generated(4098).rstrip().encode())


def test_file_blocks_failure_and_quiet_reports(telegram, fake, reactions):
    telegram()
    fake.push(private_message("example file 300", message_id=11))
    document = fake.wait_sent(1)[0]
    assert (document.method, document.params["caption"], document.files["document"]) == (
        "sendDocument", "<code>example_file</code> (job 1) succeeded; its output is attached.",
        ("example_file-1.txt", generated(300).encode()))
    fake.push(private_message("example blocks"))
    assert fake.wait_sent(2)[1].params["text"] == (
        "Disk &lt;usage&gt; &amp; more\n———\nAll <code>fine</code>")
    fake.push(private_message("example fail"))
    assert fake.wait_sent(3)[2].params["text"] == (
        "<code>example_fail</code> (job 3) failed with exit code 3.\n"
        "Last lines of stderr:\n<pre>oops</pre>\n"
        "See the logs with <code>logs 3</code> (stdout) or <code>logs 3 stderr</code>.")
    fake.push(private_message("example quiet", message_id=12))
    wait_until(lambda: ("42", "12", "👍") in reactions(0), what="the quiet job's reaction")
    time.sleep(0.3)
    assert reactions(0)[-1] == ("42", "12", "👍")  # whichever came first, 👍 is the last word
    assert len(fake.sent()) == 3  # nothing said for the quiet job


def test_429_is_retried_after_retry_after(telegram, fake):
    service, platform = telegram(serve=False)
    delivery = Delivery(id=1, platform="telegram", channel="42", thread=None, message=None,
                        is_direct=True, payload=notice("hi"), attempts=1)
    fake.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(DeliveryError) as caught:
        platform.deliver(delivery)
    assert caught.value.retry_after == 7 and not caught.value.permanent
    fake.fail_next("sendMessage", 403, description="Forbidden: bot was blocked by the user")
    with pytest.raises(DeliveryError) as caught:
        platform.deliver(delivery)
    assert caught.value.permanent
    # Through the outbox: the second attempt waits for retry_after.
    fake.fail_next("sendMessage", 429, retry_after=1)
    service.queue.add_delivery("telegram", notice("after the wait"), channel="42")
    first, second = fake.wait_sent(4)[2:]
    assert second.params["text"] == "after the wait"
    assert second.at - first.at >= 1.0


def test_a_retry_resumes_after_the_messages_that_arrived(telegram, fake):
    _, platform = telegram(serve=False)
    text = generated(8000).rstrip("\n")  # two messages
    delivery = Delivery(id=5, platform="telegram", channel="42", thread=None, message="3",
                        is_direct=False, payload=notice(text), attempts=1)
    fake.fail_next("sendMessage", 429, retry_after=2, after=1)
    with pytest.raises(DeliveryError):
        platform.deliver(delivery)
    platform.deliver(delivery)
    calls = fake.sent()
    assert len(calls) == 3  # first part, second part refused, second part again
    assert calls[0].params["reply_parameters"] == {"message_id": 3,
                                                   "allow_sending_without_reply": True}
    assert calls[1].params == calls[2].params
    assert "reply_parameters" not in calls[2].params
    assert "\n".join([calls[0].params["text"], calls[2].params["text"]]) == text


def test_a_restarted_bot_sends_only_what_had_not_arrived(fake, make_service):
    """The bot stops (or dies) between two attempts of a two-message report: the bot started
    after it sends the missing message only, and the one that arrived is not repeated."""
    service = make_service(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=fake.url)
    text = generated(8000).rstrip("\n")  # two messages
    delivery_id = service.queue.add_delivery("telegram", notice(text), channel="42")
    fake.fail_next("sendMessage", 429, retry_after=1, after=1)
    first_bot = Sender.for_service(service, TelegramPlatform.create(service))
    first_bot.settle()  # part 1 arrives, part 2 is refused: rescheduled
    first_bot.close()
    assert len(fake.sent()) == 2
    wait_until(lambda: outbound.next_due(service.queue.engine, "telegram") <= time.time(),
               what="the Retry-After to pass")
    second_bot = Sender.for_service(service, TelegramPlatform.create(service))
    second_bot.settle()
    second_bot.close()
    calls = fake.sent()
    assert len(calls) == 3 and calls[2].params == calls[1].params
    assert "\n".join([calls[0].params["text"], calls[2].params["text"]]) == text
    with service.queue.engine.connect() as conn:
        state = conn.execute(select(deliveries.c.state)
                             .where(deliveries.c.id == delivery_id)).scalar()
    assert state == "delivered"


def test_webhook_mode(fake, make_service):
    url = "https://chatops.example.org/telegram/s3cr3t-path"
    service = make_service(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=fake.url,
                           TELEGRAM_WEBHOOK_URL=url, TELEGRAM_WEBHOOK_SECRET="hook-secret_1")
    handler = CommandHandler(service.settings, service.config, service.queue)
    serving = TelegramPlatform.create(service)
    stop = threading.Event()
    thread = threading.Thread(target=serving.serve, args=(handler, stop), daemon=True)
    thread.start()
    wait_until(lambda: [c for c in fake.calls if c.method == "setWebhook"])
    hook = [c for c in fake.calls if c.method == "setWebhook"][0]
    assert (hook.params["url"], hook.params["secret_token"]) == (url, "hook-secret_1")
    assert hook.params["allowed_updates"] == ["message"]
    app = Flask("test")
    app.register_blueprint(TelegramPlatform.create(service).http_blueprint(handler))
    client = app.test_client()
    update = {"update_id": 1, "message": private_message("status")}
    good = {"X-Telegram-Bot-Api-Secret-Token": "hook-secret_1"}
    assert client.post("/telegram/wrong-path", json=update, headers=good).status_code == 404
    assert client.post("/telegram/s3cr3t-path", json=update).status_code == 401
    assert client.post("/telegram/s3cr3t-path", json=update,
                       headers={"X-Telegram-Bot-Api-Secret-Token": "nope"}).status_code == 401
    assert client.post("/telegram/s3cr3t-path", data="{not json", headers=good,
                       content_type="application/json").status_code == 400
    assert fake.sent() == []
    assert client.post("/telegram/s3cr3t-path", json=update, headers=good).status_code == 200
    assert texts(fake.sent()) == ["Nothing is running or scheduled, and no jobs are suppressed."]
    assert not [c for c in fake.calls if c.method == "getUpdates"]
    stop.set()
    thread.join(5)
    serving.close()


def test_anonymous_and_unknown_senders_do_not_crash(telegram, fake):
    telegram()
    message = group_message("/status", message_id=3, sender=user(7, "bob"))
    message["sender_chat"] = {"id": -1001234, "type": "supergroup", "title": "HPC team"}
    del message["from"]
    fake.push(message)
    assert texts(fake.wait_sent(1)) == [
        "Nothing is running or scheduled, and no jobs are suppressed."]


def test_without_reactions_an_accepted_command_is_answered_in_words(telegram, fake):
    telegram()
    fake.fail_next("setMessageReaction", 400, description="Bad Request: REACTION_INVALID")
    fake.push(private_message("example say hello Bob"))
    assert sorted(texts(fake.wait_sent(2))) == [
        "Hello Bob", "Job 1 is queued; its report will follow here."]


def test_a_report_refused_half_way_gets_the_could_not_deliver_notice(telegram, fake):
    service, _ = telegram()
    fake.fail_next("sendMessage", 403, description="Forbidden: bot was blocked by the user",
                   after=1)
    fake.push(private_message("example text 4098"))  # two messages; the second is refused
    first, refused, notice_call = fake.wait_sent(3)
    assert refused.params["text"] != first.params["text"]
    assert notice_call.params["text"] == (
        "Could not deliver the report of job 1: Telegram refused the message: "
        "Forbidden: bot was blocked by the user. <code>logs 1</code> shows its output.")
    assert "blocked" in service.queue.get(1).delivery_error


def test_getupdates_offsets_confirm_each_update_once(telegram, fake):
    telegram()
    ids = [fake.push(private_message("status", message_id=n)) for n in (1, 2, 3)]
    assert len(fake.wait_sent(3)) == 3
    wait_until(lambda: fake.offsets[-1] == ids[-1] + 1, what="the last update confirmed")
    time.sleep(0.5)  # a few more polls: nothing is handled twice
    assert len(fake.sent()) == 3
    assert fake.offsets == sorted(fake.offsets)
    assert set(fake.offsets) >= {ids[-1] + 1}


def test_logs_and_cancel_as_slash_commands(telegram, fake):
    telegram()
    fake.push(private_message("example say hello Bob"))
    fake.wait_sent(1)
    fake.push(private_message("/logs 1"))
    assert texts(fake.wait_sent(2)[1:]) == ["The end of job 1's stdout:\n<pre>Hello Bob</pre>"]
    fake.push(private_message("/cancel 1"))
    assert texts(fake.wait_sent(3)[2:]) == [
        "Job 1 (<code>example_hello</code>) already ended (succeeded)."]
