"""The monitor's status board on each platform's stand-in (issue 15, item 7): posted once and
pinned, edited in place at each revision (Slack chat.update, Telegram editMessageText, Discord
PATCH); deleted in the chat, the next edit is refused and a new board is posted (and pinned),
which later edits change; a pin the bot may not make is logged, and the board still works."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.sender import Sender
from chatops import outbound
from chatops.db import deliveries
from chatops.monitor_texts import payload
from tests.support.chat import chat_service
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # the platforms' SDKs against their stand-ins


@dataclass
class Site:
    """A platform's stand-in: the texts posted; the edits and pins, by message id."""

    platform: str
    channel: str
    posts: Callable[[], list[str]]
    edits: Callable[[], list[tuple[str, str]]]
    pins: Callable[[], list[str]]
    delete_next_edit: Callable[[], None]  # the message was deleted: the next edit is refused
    refuse_next_pin: Callable[[], None]  # the bot may not pin here
    message_id: Callable[[Any], str]  # the delivery's recorded message, as an id
    close: Callable[[], None]


def slack(tmp_path: Path) -> tuple[Any, Any, Site]:
    from bot.slack import SlackPlatform
    from bot.slack.config import SlackSettings
    from tests.support.fake_slack import BOT_TOKEN, FakeSlack

    fake = FakeSlack()
    fake.__enter__()
    service = chat_service(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=fake.url)
    platform = SlackPlatform(SlackSettings.from_settings(service.settings), {})
    site = Site(
        "slack", "C1",
        posts=lambda: [c.params["text"] for c in fake.of("chat.postMessage")],
        edits=lambda: [(c.params["ts"], c.params["text"]) for c in fake.of("chat.update")],
        pins=lambda: [c.params["timestamp"] for c in fake.of("pins.add")],
        delete_next_edit=lambda: fake.fail("chat.update", error="message_not_found"),
        refuse_next_pin=lambda: fake.fail("pins.add", error="missing_scope"),
        message_id=lambda live: live["ts"],
        close=lambda: fake.__exit__(None, None, None))
    return service, platform, site


def telegram(tmp_path: Path) -> tuple[Any, Any, Site]:
    from bot.telegram import TelegramPlatform
    from tests.support.fake_telegram import FakeTelegram

    token = "123456:board-token"
    fake = FakeTelegram(token)
    service = chat_service(tmp_path, TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_URL=fake.url)
    site = Site(
        "telegram", "42",
        posts=lambda: [c.params["text"] for c in fake.sent("sendMessage")],
        edits=lambda: [(str(c.params["message_id"]), c.params["text"])
                       for c in fake.sent("editMessageText")],
        pins=lambda: [str(c.params["message_id"]) for c in fake.sent("pinChatMessage")],
        delete_next_edit=lambda: fake.fail_next(
            "editMessageText", status=400, description="Bad Request: message to edit not found"),
        refuse_next_pin=lambda: fake.fail_next(
            "pinChatMessage", status=400,
            description="Bad Request: not enough rights to manage pinned messages in the chat"),
        message_id=str, close=fake.close)
    return service, TelegramPlatform.create(service), site


def discord(tmp_path: Path) -> tuple[Any, Any, Site]:
    from bot.discord import DiscordPlatform
    from tests.support.fake_discord import FakeDiscord, Signer

    fake = FakeDiscord()
    service = chat_service(tmp_path, DISCORD_BOT_TOKEN="discord-board-token",
                           DISCORD_APPLICATION_ID="100000000000000001",
                           DISCORD_PUBLIC_KEY=Signer().public_hex, DISCORD_API_URL=fake.url)
    site = Site(
        "discord", "555",
        posts=lambda: [c.body["content"] for c in fake.sent("/channels/555/messages")
                       if c.method == "POST"],
        edits=lambda: [(c.path.rsplit("/", 1)[1], c.body["content"])
                       for c in fake.sent("/channels/555/messages/") if c.method == "PATCH"],
        pins=lambda: [c.path.rsplit("/", 1)[1] for c in fake.sent("/channels/555/messages/pins/")
                      if c.method == "PUT"],
        delete_next_edit=lambda: fake.fail_next(r"/channels/555/messages/\d+", status=404),
        refuse_next_pin=lambda: fake.fail_next(r"/channels/555/messages/pins/\d+", status=403),
        message_id=str, close=fake.close)
    return service, DiscordPlatform.create(service), site


@pytest.fixture(params=[slack, telegram, discord])
def site(request, tmp_path: Path) -> Iterator[tuple[Any, Sender, Site]]:
    service, platform, stand_in = request.param(tmp_path)
    worker = Sender.for_service(service, platform)
    yield service, worker, stand_in
    worker.close()
    platform.close()
    stand_in.close()


def board(text: str) -> dict[str, Any]:
    return payload("saga", "board", "online", text)


def posted(service: Any, row_id: int, site: Site) -> str:
    """The message the board's row now edits."""
    with service.queue.engine.connect() as conn:
        progress = conn.execute(select(deliveries.c.progress).where(
            deliveries.c.id == row_id)).scalar()
    return site.message_id(json.loads(progress)["live"])


def revise_and_send(service: Any, worker: Sender, row_id: int, text: str,
                    sent: Callable[[], bool]) -> None:
    assert outbound.revise(service.queue.engine, row_id, board(text))
    wait_until(lambda: worker.settle() or sent(), 10, f"{text!r} sent")


def test_a_board_is_pinned_edited_and_posted_anew_when_deleted(site) -> None:
    service, worker, stand_in = site
    row = service.queue.add_delivery(stand_in.platform, board("🟢 saga: ONLINE for 1 min"),
                                     channel=stand_in.channel)
    worker.settle()
    assert stand_in.posts() == ["🟢 saga: ONLINE for 1 min"]
    first = posted(service, row, stand_in)
    assert stand_in.pins() == [first]

    revise_and_send(service, worker, row, "🟡 saga: DEGRADED for 0 s",
                    lambda: len(stand_in.edits()) == 1)
    assert stand_in.edits() == [(first, "🟡 saga: DEGRADED for 0 s")]
    assert len(stand_in.posts()) == 1  # edited, not posted again

    stand_in.delete_next_edit()  # someone deleted the board in the chat
    revise_and_send(service, worker, row, "🟢 saga: ONLINE for 0 s",
                    lambda: len(stand_in.posts()) == 2)
    assert stand_in.posts()[1] == "🟢 saga: ONLINE for 0 s"  # a new board
    second = posted(service, row, stand_in)
    assert second != first and stand_in.pins() == [first, second]

    revise_and_send(service, worker, row, "🟢 saga: ONLINE for 1 min",
                    lambda: len(stand_in.edits()) == 3)
    assert stand_in.edits()[-1] == (second, "🟢 saga: ONLINE for 1 min")  # the new one
    assert len(stand_in.posts()) == 2
    assert outbound.counts(service.queue.engine, stand_in.platform) == {"delivered": 1}


def test_a_pin_the_bot_may_not_make_is_logged_and_the_board_still_works(
        site, caplog: pytest.LogCaptureFixture) -> None:
    service, worker, stand_in = site
    stand_in.refuse_next_pin()
    with caplog.at_level(logging.WARNING, logger="chatops.live"):
        row = service.queue.add_delivery(stand_in.platform, board("🟢 saga: ONLINE for 1 min"),
                                         channel=stand_in.channel)
        worker.settle()
    first = posted(service, row, stand_in)
    assert stand_in.pins() == [first]  # asked, refused
    [warning] = [r.getMessage() for r in caplog.records if r.name == "chatops.live"]
    assert warning.startswith(f"delivery {row}: could not pin the message in "
                              f"{stand_in.platform} {stand_in.channel}: ")
    assert outbound.counts(service.queue.engine, stand_in.platform) == {"delivered": 1}
    revise_and_send(service, worker, row, "🟡 saga: DEGRADED for 0 s",
                    lambda: len(stand_in.edits()) == 1)
    assert stand_in.edits() == [(first, "🟡 saga: DEGRADED for 0 s")]
