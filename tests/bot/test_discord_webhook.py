"""A monitor's ``discord_webhook:NAME`` target: posted to the webhook whose URL is in NAME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.discord_webhook import DiscordWebhookPlatform
from bot.sender import Sender
from chatops import migrate
from chatops.config_loader import build_config
from chatops.db import deliveries, make_engine
from chatops.monitor_texts import payload
from chatops.queue import Queue
from chatops.service import Service
from chatops.settings import load_settings
from tests.support.fake_discord import FakeDiscord
from tests.support.wait import wait_until


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    server = FakeDiscord()
    yield server
    server.close()


def test_a_monitor_message_goes_to_the_webhook_named_by_the_variable(
        tmp_path: Path, fake: FakeDiscord) -> None:
    url = f"{fake.url}/webhooks/123456/s3cret-webhook-token"
    settings = load_settings({"CHATOPS_HOME": str(tmp_path), "DISCORD_WEBHOOK": url})
    assert DiscordWebhookPlatform.is_configured(settings)
    assert not DiscordWebhookPlatform.is_configured(load_settings({"CHATOPS_HOME": "/x"}))
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    queue = Queue(engine)
    platform = DiscordWebhookPlatform(Service(settings, build_config({}), queue))
    worker = Sender.for_service(Service(settings, build_config({}), queue), platform)
    text = "🟡 saga is DEGRADED (online for 3 h before)\n• node03 drained: 'disk replace'"
    queue.add_delivery("discord_webhook", payload("saga", "change", "degraded", text),
                       channel="DISCORD_WEBHOOK")
    fake.fail_next(r"/webhooks/123456/.*", status=429, retry_after=0.01)
    worker.settle()  # throttled: due again shortly
    wait_until(lambda: worker.settle() or len(fake.sent("/webhooks/")) == 2, 5, "the retry")
    throttled, sent = fake.sent("/webhooks/")
    assert (sent.method, sent.path) == ("POST", "/webhooks/123456/s3cret-webhook-token")
    assert sent.body == throttled.body == {"content": text, "allowed_mentions": {"parse": []}}

    queue.add_delivery("discord_webhook", payload("saga", "board", "online", "hello"),
                       channel="NO_SUCH_VARIABLE")
    worker.settle()
    worker.close()
    with engine.connect() as conn:
        failed = conn.execute(select(deliveries.c.state, deliveries.c.last_error).where(
            deliveries.c.channel == "NO_SUCH_VARIABLE")).one()
    assert failed == ("dead", "environment variable NO_SUCH_VARIABLE does not hold a "
                      "Discord webhook URL (https://discord.com/api/webhooks/<id>/<token>); "
                      "set it and restart the service")
    platform.close()


def test_a_board_is_posted_once_then_edited_and_reposted_when_deleted(
        tmp_path: Path, fake: FakeDiscord) -> None:
    from chatops import outbound

    url = f"{fake.url}/webhooks/123456/s3cret-webhook-token"
    settings = load_settings({"CHATOPS_HOME": str(tmp_path), "DISCORD_WEBHOOK": url})
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    queue = Queue(engine)
    service = Service(settings, build_config({}), queue)
    platform = DiscordWebhookPlatform(service)
    worker = Sender.for_service(service, platform)
    board = queue.add_delivery("discord_webhook", payload("saga", "board", "online",
                                                          "🟢 saga: ONLINE for 1 min"),
                               channel="DISCORD_WEBHOOK")
    worker.settle()
    [posted] = fake.sent("/webhooks/")
    assert (posted.method, posted.body["content"]) == ("POST", "🟢 saga: ONLINE for 1 min")
    assert outbound.revise(engine, board, payload("saga", "board", "degraded",
                                                  "🟡 saga: DEGRADED for 0 s"))
    wait_until(lambda: worker.settle() or len(fake.sent("/webhooks/")) == 2, 5, "the edit")
    edited = fake.sent("/webhooks/")[1]
    assert (edited.method, edited.body["content"]) == ("PATCH", "🟡 saga: DEGRADED for 0 s")
    assert edited.path == f"/webhooks/123456/s3cret-webhook-token/messages/{fake.next_id - 1}"
    # Someone deleted the message: the edit is refused (404), and a new board is posted,
    # which the next edit changes (a webhook cannot pin).
    fake.fail_next(r"/webhooks/.*/messages/.*", status=404)
    assert outbound.revise(engine, board, payload("saga", "board", "online", "🟢 back"))
    wait_until(lambda: worker.settle() or len(fake.sent("/webhooks/")) == 4, 5, "a new board")
    refused, reposted = fake.sent("/webhooks/")[2:]
    assert (refused.method, reposted.method, reposted.body["content"]) == (
        "PATCH", "POST", "🟢 back")
    new_id = fake.next_id
    assert outbound.revise(engine, board, payload("saga", "board", "online", "🟢 again"))
    wait_until(lambda: worker.settle() or len(fake.sent("/webhooks/")) == 5, 5, "the edit")
    again = fake.sent("/webhooks/")[4]
    assert (again.method, again.body["content"]) == ("PATCH", "🟢 again")
    assert again.path == f"/webhooks/123456/s3cret-webhook-token/messages/{new_id}"
    assert outbound.counts(engine) == {"delivered": 1}  # one row: the board
    worker.close()
    platform.close()
