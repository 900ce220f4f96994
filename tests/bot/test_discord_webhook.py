"""A monitor's ``discord_webhook:NAME`` target: posted to the webhook whose URL is in NAME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.discord_webhook import DiscordWebhookPlatform
from bot.sender import Sender
from chatops import migrate
from chatops.db import deliveries, make_engine
from chatops.job_config import build_config
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
