"""A resend after a crash carries the message's nonce with enforce_nonce: Discord keeps one
message (issue 12, item 1). The lease of Discord sends is within the minutes it honours one."""

from __future__ import annotations

from pathlib import Path

from bot.discord import DiscordPlatform
from bot.sender import Sender
from chatops.platform import Delivery
from chatops.report import notice
from tests.support.chat import chat_service
from tests.support.fake_discord import FakeDiscord, Signer


def test_every_attempt_at_a_message_sends_the_same_nonce(tmp_path: Path) -> None:
    fake = FakeDiscord()
    service = chat_service(tmp_path, DISCORD_BOT_TOKEN="discord-nonce-token",
                           DISCORD_APPLICATION_ID="100000000000000001",
                           DISCORD_PUBLIC_KEY=Signer().public_hex, DISCORD_API_URL=fake.url)
    platform = DiscordPlatform.create(service)
    try:
        for _ in range(2):  # the same row, its progress lost with the first sender
            platform.deliver(Delivery(id=41, platform="discord", channel="555", thread=None,
                                      message=None, is_direct=False,
                                      payload=notice("sent once"), attempts=1))
        first, again = fake.sent("/channels/555/messages")
        assert first.body["nonce"] == again.body["nonce"] == "41.no.0"
        assert first.body["enforce_nonce"] is True and again.body["enforce_nonce"] is True
        assert Sender.for_service(service, platform).lease == 120.0
    finally:
        platform.close()
        fake.close()
