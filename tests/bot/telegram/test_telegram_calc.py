"""Calculations on Telegram: a document with a caption, fetched with getFile, run on the live test
cluster, and its two result files sent back as documents (the real python-telegram-bot against
the stand-in Bot API, the real Dispatcher and OutboxWorker)."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.telegram import TelegramPlatform
from chatops.calc import store
from chatops.commands import CommandHandler
from tests.support.fake_telegram import FakeTelegram, group_message, private_message
from tests.support.remote import cluster_env, cluster_settings
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # the test cluster, PTB polling, the dispatcher

TOKEN = "123456:TEST-token-abcdef"
INPUT = b"water\nH 0 0 0\nO 0 0 1\n"


def config_text(upload: str, more: str = "") -> str:
    cluster = cluster_settings(cluster_env(), upload_path=upload)
    return more + f"""
raw_config = {{}}
admin_channel = "telegram:-1009"
admins = ["telegram:7"]
clusters = {{"test": {cluster!r}}}
runners = {{"test": {{"shout": {{
    "program": "wc -l < {{}} > lines.txt; tr a-z A-Z < {{}} > upper.dat; echo {{args}}",
    "extensions": [".gjf"], "allowed_args": ["{{}}", "-v"],
    "slurm": {{"partition": "debug", "time": "5", "mem": "64M", "poll_seconds": 2}}}}}}}}
"""


@pytest.fixture
def fake():
    server = FakeTelegram(TOKEN)
    yield server
    server.close()


def serve(fake, make_service, run_backend, tmp_path: Path, extra: str = "",
          **env: str) -> Iterator:
    """A calculation service on Telegram (the bot polling, the backend running) while the
    caller's fixture lasts; ``extra``: more config lines, ``env``: more settings."""
    upload = f"{cluster_env()['CHATOPS_TEST_JOBS_DIR']}/tgcalc-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "calc_configs.py"
    config.write_text(config_text(upload, extra))
    service = make_service(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=fake.url,
                           CHATOPS_CONFIG=str(config), **env)
    platform = TelegramPlatform.create(service)
    stop = threading.Event()
    handler = CommandHandler(service.settings, service.config, service.queue)
    thread = threading.Thread(target=platform.serve, args=(handler, stop), daemon=True)
    thread.start()
    wait_until(lambda: fake.offsets, what="the first getUpdates")
    run_backend(service, platform)
    yield service
    stop.set()
    thread.join(10)
    platform.close()


@pytest.fixture
def telegram(fake, make_service, run_backend, tmp_path: Path, request):
    yield from serve(fake, make_service, run_backend, tmp_path, getattr(request, "param", ""))


def to_chat(fake: FakeTelegram, chat: str = "42") -> list:
    return [c for c in fake.sent() if c.params.get("chat_id") == chat]


def first_reply(fake: FakeTelegram, chat: str = "42") -> Any:
    """The first message the bot sent to ``chat`` (the audit goes to the admin chat, and may
    come first)."""
    return wait_until(lambda: [c for c in to_chat(fake, chat) if c.method == "sendMessage"][:1],
                      30, f"a reply in chat {chat}")[0]


def test_a_document_runs_and_both_result_files_come_back(telegram, fake) -> None:
    document = fake.add_file("DOC1", "water.gjf", INPUT)
    fake.push(private_message("", message_id=7, document=document, caption="run -v"))
    wait_until(lambda: len(to_chat(fake)) >= 5, 180,  # (Slurm may be busy with others' jobs)
               "the reply, the notice, the report and two documents")
    messages = [c for c in to_chat(fake) if c.method == "sendMessage"]
    # the reply and the "submitted" notice race (the handler's answer, the outbox's delivery)
    [reply] = [c for c in messages if re.match(r"Calculation \d+: ", c.params["text"])]
    [notice] = [c for c in messages if "submitted as calculation" in c.params["text"]]
    [report] = [c for c in messages if re.match(r"Calculation \d+ \(", c.params["text"])]
    first, second = [c for c in to_chat(fake) if c.method == "sendDocument"]
    job_id = int(re.match(r"Calculation (\d+):", reply.params["text"])[1])
    assert reply.params["text"] == (
        f"Calculation {job_id}: <code>water.gjf</code> is queued for runner <code>shout</code> "
        f"on cluster test (1 of 5 calculations used this month; the next comes back on "
        f"{reply.params['text'].split('comes back on ')[1]}")
    assert re.fullmatch(rf"<code>water.gjf</code> submitted as calculation {job_id} \(Slurm "
                        r"job \d+ on cluster test\)\.", notice.params["text"])
    assert report.params["text"].startswith(
        f"Calculation {job_id} (<code>water.gjf</code>), runner <code>shout</code> on cluster "
        "test: completed.\nSlurm job ")
    assert report.params["text"].endswith(
        "Result files: <code>lines.txt</code>, <code>upper.dat</code>.")
    assert [(c.method, c.files["document"]) for c in (first, second)] == [
        ("sendDocument", ("lines.txt", b"3\n")), ("sendDocument", ("upper.dat", INPUT.upper()))]
    assert [c.params["file_id"] for c in fake.sent("getFile")] == ["DOC1"]
    audit = [c.params["text"] for c in wait_until(
        lambda: len(to_chat(fake, "-1009")) >= 3 and to_chat(fake, "-1009"), 15, "the audit")]
    assert audit[0] == "[audit] telegram:42 (alice) is a new user"
    assert audit[1].startswith(f"[audit] telegram:42 (alice) submitted calculation {job_id}: "
                               "<code>water.gjf</code>")
    assert audit[2].startswith(f"[audit] telegram:42: Calculation {job_id} "
                               "(<code>water.gjf</code>), runner")


def test_a_file_telegram_will_not_serve_is_refused_and_nothing_is_spent(telegram, fake) -> None:
    document = fake.add_file("DOC2", "big.gjf", INPUT)
    fake.fail_next("getFile", 400, description="Bad Request: file is too big")
    fake.push(private_message("", message_id=8, document=document))
    reply = first_reply(fake)
    assert reply.params["text"] == ("Not submitted: Telegram would not give me the file (File "
                                    "is too big). Send the file again.")
    assert store.quota(telegram.queue.engine, telegram.config.calc, "telegram:42").used == 0
    assert telegram.queue.history() == []


def test_a_document_in_a_group_needs_run_or_a_mention(telegram, fake) -> None:
    document = fake.add_file("DOC3", "../x.gjf", INPUT)
    last = fake.push(group_message("", message_id=9, document=document, caption="look at this"))
    wait_until(lambda: max(fake.offsets) > last, what="the update to be confirmed")
    fake.push(group_message("", message_id=10, document=document, caption="/run"))
    reply = first_reply(fake, "-1001234")
    assert reply.params["text"] == ("Not submitted: the file name <code>../x.gjf</code> has "
                                    "folder parts (<code>/</code>). Rename the file and send "
                                    "it again.")
    assert reply.params["reply_parameters"]["message_id"] == 10


def test_hpc_bot_command_names_work(telegram, fake) -> None:
    admin = {"id": 7, "is_bot": False, "first_name": "Root", "username": "root"}

    def say(text: str, sender: dict | None = None) -> str:
        chat = "7" if sender else "42"
        before = len(to_chat(fake, chat))
        fake.push(private_message(text, chat_id=int(chat), message_id=before + 100,
                                  **({"sender": sender} if sender else {})))
        wait_until(lambda: len(to_chat(fake, chat)) > before, 15,
                   f"the answer to {text}")
        return "\n".join(c.params["text"] for c in to_chat(fake, chat)[before:])

    start = say("/start")  # one message: the mail-user switch, then the quota
    assert start.endswith("You have used 0 of 5 calculations this month (5 left).")
    assert start.startswith("To get Slurm's notifications about your jobs in this chat")
    assert say("/upd Ada Lovelace Analytical Engines") == (
        "Your profile is now: Ada Lovelace, Analytical Engines.")
    assert say("/approve telegram:42") == ("Only admins may use <code>approve</code>; you are "
                                           "telegram:42.")
    assert say("/approve telegram:42", admin) == (
        "Approved telegram:42 (alice): they have used 0 of 25 calculations this month "
        "(25 left).")
    assert say("/alter_limit @alice 9", admin) == (
        "telegram:42 (alice): they have used 0 of 9 calculations this month (9 left).")
    assert say("/search ali", admin) == "• telegram:42 alice: approved, 0 of 9 used"
    assert say("/list", admin) == "• telegram:42 alice: approved, 0 of 9 used"
    assert say("/block telegram:42 spam", admin) == "Blocked telegram:42 (alice) (spam)."
    assert say("/status") == ("Sorry, you are blocked (reason: spam). Ask an admin if this is a "
                              "mistake.")
    assert say("/unblock telegram:42", admin) == "Unblocked telegram:42 (alice)."
    assert say("/status 99") == ("There is no calculation 99 of yours. <code>calcs</code> "
                                 "lists them.")
    assert say("/status") == "Nothing is running or scheduled, and no jobs are suppressed."
    assert "• <code>shout</code> on test (.gjf)" in say("/help")
    audit = [c.params["text"] for c in wait_until(
        lambda: len(to_chat(fake, "-1009")) >= 6 and to_chat(fake, "-1009"), 15, "the audit")]
    assert audit == [
        "[audit] telegram:42 (alice) is a new user",
        "[audit] telegram:42 set their profile: Ada Lovelace, Analytical Engines",
        "[audit] telegram:7 approved telegram:42",
        "[audit] telegram:7 set the quota of telegram:42 to 9",
        "[audit] telegram:7 blocked telegram:42 (spam)",
        "[audit] telegram:7 unblocked telegram:42"]


GROUP_ONLY = 'calculations = {"register_from": {"telegram:-1001234": "the HPC users group"}}\n'


@pytest.mark.parametrize("telegram", [GROUP_ONLY], indirect=True)
def test_new_users_register_only_from_the_configured_group(telegram, fake) -> None:
    where = ("new users register for calculations only from the HPC users group. Register "
             "there first (send a file, or /start on Telegram); after that you can run "
             "calculations from anywhere, here too.")

    def answers(push, chat: str, count: int = 1) -> list[str]:
        before = len(to_chat(fake, chat))
        push()
        return [c.params.get("text") or c.params.get("caption") for c in wait_until(
            lambda: len(to_chat(fake, chat)) >= before + count and to_chat(fake, chat)[before:],
            180, f"{count} answer(s) in {chat}")]

    start = answers(lambda: fake.push(private_message("/start", message_id=1)), "42")
    assert start[0].startswith("To get Slurm's notifications about your jobs in this chat")
    assert start[0].endswith(f"Not registered: {where}")
    document = fake.add_file("DOC9", "water.gjf", INPUT)
    assert answers(lambda: fake.push(private_message("", message_id=2, document=document)),
                   "42") == [f"Not submitted: {where}"]
    assert fake.sent("getFile") == []  # refused before the file was fetched
    assert store.user(telegram.queue.engine, "telegram:42") is None
    # /start in the group makes a user: from then on their own chat works too
    joined = answers(lambda: fake.push(group_message("/start", message_id=3)), "-1001234")
    assert joined[0].endswith("You have used 0 of 5 calculations this month (5 left).")
    ran = answers(lambda: fake.push(private_message("", message_id=4, document=document)),
                  "42", 3)  # the reply, the notice and the report
    assert any(re.match(r"Calculation \d+: <code>water.gjf</code> is queued", text)
               for text in ran), ran
    assert any(re.match(r"Calculation \d+ \(<code>water.gjf</code>\).*: completed", text)
               for text in ran), ran
    audit = [c.params["text"] for c in wait_until(
        lambda: len(to_chat(fake, "-1009")) >= 4 and to_chat(fake, "-1009"), 30, "the audit")]
    assert audit[:3] == [f"[audit] telegram:42 (alice): Not registered: {where}",
                         f"[audit] telegram:42 (alice): Not submitted: {where}",
                         "[audit] telegram:42 (alice) is a new user"]
    assert audit[3].startswith("[audit] telegram:42 (alice) submitted calculation ")
