"""The delivery queue: a bot that dies mid-send loses nothing and repeats nothing it recorded."""

from __future__ import annotations

import json
import time
from pathlib import Path

from chatops import migrate
from chatops.db import make_engine
from chatops.queue import DELIVERY_LEASE_SECONDS, Queue
from chatops.report import notice


def test_a_delivery_left_sending_by_a_dead_bot_comes_due_again_with_its_progress(
        tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'chatops.db'}")
    migrate.upgrade(engine)
    queue = Queue(engine)
    delivery_id = queue.add_delivery("telegram", notice("a long report"), channel="42")
    claimed = queue.claim_delivery("telegram")
    assert (claimed.id, claimed.state, claimed.attempts) == (delivery_id, "sending", 1)
    queue.save_delivery_progress(delivery_id, {"sent": 1})  # then the bot is killed
    assert queue.claim_delivery("telegram") is None  # another bot: still leased
    later = time.time() + DELIVERY_LEASE_SECONDS + 1
    assert queue.next_delivery_due("telegram") <= later
    again = queue.claim_delivery("telegram", now=later)
    assert (again.id, again.state, again.attempts) == (delivery_id, "sending", 2)
    assert json.loads(again.progress) == {"sent": 1}
    queue.delivered(delivery_id)
    assert queue.claim_delivery("telegram", now=later + 2 * DELIVERY_LEASE_SECONDS) is None
