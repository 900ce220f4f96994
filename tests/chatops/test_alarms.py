"""Start-up warnings reach the admin channel (``admin_channel = "console:admins"`` in the spine's
config) as one notice, through the outbound path."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.support.cli import Chatops
from tests.support.notify import free_port
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # a real chatops web process


def admin_notices(chatops: Chatops) -> list[str]:
    with sqlite3.connect(chatops.home / "chatops.db") as db:
        rows = db.execute("SELECT payload FROM deliveries WHERE platform = 'console' "
                          "AND channel = 'admins' ORDER BY id").fetchall()
    return [json.loads(payload)["text"] for (payload,) in rows]


def test_start_up_warnings_go_to_the_admin_channel(chatops: Chatops) -> None:
    chatops.env.update(CHATOPS_WEB_TOKEN="short-token")
    chatops.start("web", "--port", str(free_port()))
    [text] = wait_until(lambda: admin_notices(chatops), timeout=30, what="the admin notice")
    lines = text.splitlines()
    assert lines[0].startswith("chatops web started on ") and lines[0].endswith(" 1 warning:")
    assert ("• CHATOPS_WEB_TOKEN is 11 characters long: it is all that keeps the dashboard "
            "closed; use at least 20 random ones") in text
    assert "short-token" not in text
    assert "CHATOPS_WEB_TOKEN is 11 characters long" in chatops.log_text()  # logged as well
