"""A Slack resend after a crash (issue 12, item 1): every message carries its delivery and step
as metadata, and a later attempt looks in the thread before posting, so a message Slack took
before the sender died (its progress unsaved) is not posted twice."""

from __future__ import annotations

from bot.slack import SlackPlatform
from bot.slack.config import SlackSettings
from chatops.platform import Delivery
from chatops.report import notice
from chatops.settings import load_settings
from tests.support.fake_slack import BOT_TOKEN, FakeSlack


def attempt(platform: SlackPlatform, number: int, progress: dict) -> None:
    platform.deliver(Delivery(id=7, platform="slack", channel="C1", thread="1700.1",
                              message=None, is_direct=False, payload=notice("sent once"),
                              attempts=number, progress=progress))


def test_a_resend_finds_the_message_in_the_thread_and_posts_nothing() -> None:
    with FakeSlack() as fake:
        settings = load_settings({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": fake.url})
        platform = SlackPlatform(SlackSettings.from_settings(settings), {})
        attempt(platform, 1, {})  # Slack takes it; the sender dies before saving its progress
        (posted,) = fake.of("chat.postMessage")
        assert posted.params["metadata"] in (
            {"event_type": "chatops_delivery", "event_payload": {"delivery": "7",
                                                                 "step": "notice.0"}},
            '{"event_type": "chatops_delivery", "event_payload": {"delivery": "7", '
            '"step": "notice.0"}}')
        progress: dict = {}
        attempt(platform, 2, progress)  # the lease ended: another sender tries again
        assert len(fake.of("chat.postMessage")) == 1
        assert [c.params["ts"] for c in fake.of("conversations.replies")] == ["1700.1"]
        assert progress == {"notice.0": "C1"}
        attempt(platform, 1, {})  # a first attempt does not look (nothing can be there)
        assert len(fake.of("chat.postMessage")) == 2
        assert len(fake.of("conversations.replies")) == 1
