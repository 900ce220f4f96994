"""Live progress on each platform's stand-in (issue 12, item 7): a 20 s job that prints a line a
second gets one progress message in its thread, edited a bounded number of times (the
platform's edit call: Slack chat.update, Telegram editMessageText, Discord PATCH), ended with
a one-line final state; the report is a new message after it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatops import outbound
from chatops.events import Requester
from tests.support.chat import Running, chat_service
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # a 20 s job per platform

PROGRESS = {"CHATOPS_PROGRESS_AFTER": "2", "CHATOPS_PROGRESS_EVERY": "2"}
FINAL = re.compile(r"`example_tick` \(job \d+\) succeeded after 0:00:(1[89]|2\d)\.")


@dataclass
class Site:
    """A platform's stand-in, seen as: the messages posted and the edits, as (id, text)."""

    requester: Requester
    posts: Callable[[], list[tuple[str, str]]]
    edits: Callable[[], list[tuple[str, str]]]
    close: Callable[[], None]


def slack(tmp_path: Path) -> tuple[Any, Site]:
    from bot.slack import SlackPlatform
    from bot.slack.config import SlackSettings
    from tests.support.fake_slack import BOT_TOKEN, FakeSlack

    fake = FakeSlack()
    fake.__enter__()
    service = chat_service(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=fake.url,
                           **PROGRESS)
    platform = SlackPlatform(SlackSettings.from_settings(service.settings), {})

    def posts() -> list[tuple[str, str]]:
        calls = fake.of("chat.postMessage")
        return [(f"{1700000000 + n + 1}.000100", c.params["text"]) for n, c in
                enumerate(calls) if c.params.get("thread_ts") == "1700.1"] if calls else []

    def edits() -> list[tuple[str, str]]:
        return [(c.params["ts"], c.params["text"]) for c in fake.of("chat.update")]

    return (service, platform), Site(Requester("slack", "U1", channel="C1", thread="1700.1",
                                               message="1700.1"), posts, edits,
                                     lambda: fake.__exit__(None, None, None))


def telegram(tmp_path: Path) -> tuple[Any, Site]:
    from bot.telegram import TelegramPlatform
    from tests.support.fake_telegram import FakeTelegram

    token = "123456:live-progress-token"
    fake = FakeTelegram(token)
    service = chat_service(tmp_path, TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_URL=fake.url,
                           **PROGRESS)
    sent = fake.sent  # sendMessage answers count message ids from 5001 (no other messages here)

    def posts() -> list[tuple[str, str]]:
        return [(str(5001 + n), c.params["text"]) for n, c in enumerate(sent("sendMessage"))]

    def edits() -> list[tuple[str, str]]:
        return [(str(c.params["message_id"]), c.params["text"])
                for c in sent("editMessageText")]

    return (service, TelegramPlatform.create(service)), Site(
        Requester("telegram", "42", channel="42", message="7"), posts, edits, fake.close)


def discord(tmp_path: Path) -> tuple[Any, Site]:
    from bot.discord import DiscordPlatform
    from tests.support.fake_discord import FakeDiscord, Signer

    fake = FakeDiscord()
    service = chat_service(tmp_path, DISCORD_BOT_TOKEN="discord-live-token",
                           DISCORD_APPLICATION_ID="100000000000000001",
                           DISCORD_PUBLIC_KEY=Signer().public_hex, DISCORD_API_URL=fake.url,
                           **PROGRESS)
    base = fake.next_id

    def posts() -> list[tuple[str, str]]:
        calls = [c for c in fake.sent("/channels/555/messages") if c.method == "POST"]
        return [(str(base + n + 1), c.body["content"]) for n, c in enumerate(calls)]

    def edits() -> list[tuple[str, str]]:
        return [(c.path.rsplit("/", 1)[1], c.body["content"])
                for c in fake.sent("/channels/555/messages/") if c.method == "PATCH"]

    return (service, DiscordPlatform.create(service)), Site(
        Requester("discord", "77", channel="555"), posts, edits, fake.close)


@pytest.fixture(params=[slack, telegram, discord])
def site(request, tmp_path: Path) -> Iterator[tuple[Any, Any, Site]]:
    (service, platform), stand_in = request.param(tmp_path)
    running = Running(service, platform)
    yield service, running, stand_in
    running.close()
    platform.close()
    stand_in.close()


def test_a_long_job_gets_one_progress_message_edited_then_its_report(site) -> None:
    service, running, stand_in = site
    job = service.queue.enqueue("example_tick", {}, stand_in.requester, timeout=60)
    wait_until(lambda: any("tick 20" in text for _, text in stand_in.posts()), timeout=60,
               what="the report")
    wait_until(lambda: any(FINAL.search(text) for _, text in stand_in.edits()), timeout=15,
               what="the progress message's final line")
    posts, edits = stand_in.posts(), stand_in.edits()
    (progress, *others) = [(ref, text) for ref, text in posts if "is running:" in text]
    assert others == []  # one progress message
    assert re.search(rf"`example_tick` \(job {job.job_id}\) is running: 0:00:0\d so far",
                     progress[1])
    assert {ref for ref, _ in edits} == {progress[0]}  # every edit is of that message
    assert 3 <= len(edits) <= 12  # about one every 2 s of the 20, never one per line
    assert any(re.search(r"tick \d+", text) for _, text in edits[:-1])  # its last lines
    assert FINAL.search(edits[-1][1]) and "\n" not in edits[-1][1]  # one line at the end
    report = [text for _, text in posts if "tick 20" in text]
    assert report and posts.index((progress[0], progress[1])) < len(posts) - 1
    assert outbound.counts(service.queue.engine).get("pending", 0) == 0
