"""The outbound table: a sender that dies mid-send loses nothing and repeats nothing it recorded."""

from __future__ import annotations

import json
import time
from pathlib import Path

from chatops import migrate, outbound
from chatops.db import make_engine
from chatops.queue import Queue
from chatops.report import notice


def test_a_delivery_left_sending_by_a_dead_bot_comes_due_again_with_its_progress(
        tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'chatops.db'}")
    migrate.upgrade(engine)
    queue = Queue(engine)
    delivery_id = queue.add_delivery("telegram", notice("a long report"), channel="42")
    assert [r.id for r in outbound.waiting(engine, "telegram")] == [delivery_id]
    claimed = outbound.claim(engine, delivery_id)
    assert (claimed.id, claimed.state, claimed.attempts) == (delivery_id, "sending", 1)
    outbound.save_progress(engine, delivery_id, json.dumps({"sent": 1}))  # then it is killed
    assert outbound.claim(engine, delivery_id) is None  # another sender: still leased
    assert outbound.waiting(engine, "telegram") == []
    later = time.time() + outbound.LEASE_SECONDS + 1
    assert outbound.next_due(engine, "telegram") <= later
    assert [r.id for r in outbound.waiting(engine, "telegram", now=later)] == [delivery_id]
    again = outbound.claim(engine, delivery_id, now=later)
    assert (again.id, again.state, again.attempts) == (delivery_id, "sending", 2)
    assert json.loads(again.progress) == {"sent": 1}
    outbound.delivered_many(engine, [(delivery_id, again.revision)])
    assert outbound.claim(engine, delivery_id, now=later + 2 * outbound.LEASE_SECONDS) is None
