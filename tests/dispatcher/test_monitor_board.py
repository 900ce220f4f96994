"""The monitor's status board on Slack (the stand-in) against the real test cluster: a drain
edits the pinned board in place (not re-posted) and posts the change; the board deleted in
Slack, the next edit is refused and a new board is posted and pinned."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.sender import Sender
from bot.slack import SlackPlatform
from bot.slack.config import SlackSettings
from chatops import monitor_store as store
from chatops.db import deliveries
from chatops.service import Service
from tests.support.fake_slack import BOT_TOKEN, FakeSlack
from tests.support.remote import Harness, cluster_env, cluster_settings, slurm_update


@pytest.mark.slow
def test_the_board_on_slack_is_edited_in_place_and_posted_anew_when_deleted(
        tmp_path: Path, node: str) -> None:
    """The same row keeps editing the new board."""
    env = cluster_env()
    with FakeSlack() as fake:
        harness = Harness(tmp_path / "home", {}, {"testcluster": cluster_settings(env)},
                          monitors={"testcluster": {"cadence": "1s", "timeout": 1,
                                                    "offline_after": 10,  # (others' restarts)
                                                    "targets": ["slack:C1"]}},
                          SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=fake.url)
        platform = SlackPlatform(SlackSettings.from_settings(harness.settings), {})
        sender = Sender.for_service(Service(harness.settings, harness.config, harness.queue),
                                    platform)
        stop = threading.Event()
        thread = threading.Thread(target=sender.run, args=(stop,), daemon=True)
        thread.start()

        # (fake.wait_until's predicate gets the calls: fake.of would wait on its own lock)
        def posts(pattern: str, calls: list | None = None) -> list[str]:
            calls = fake.of("chat.postMessage") if calls is None else calls
            return [c.params["text"] for c in calls if c.method == "chat.postMessage"
                    and re.search(pattern, c.params["text"])]

        def edited(pattern: str, calls: list | None = None) -> list[tuple[str, str]]:
            calls = fake.of("chat.update") if calls is None else calls
            return [(c.params["ts"], c.params["text"]) for c in calls
                    if c.method == "chat.update" and re.search(pattern, c.params["text"])]

        boards = r"^\S+ testcluster: [A-Z]+ for "
        try:
            fake.wait_until(lambda calls: posts(boards, calls), 30)
            [pin] = fake.wait_count("pins.add", 1)  # the board, pinned
            board_ts = pin.params["timestamp"]
            slurm_update(node, "state=drain", "reason=disk replace")
            problem = rf"Problem nodes:\n• {node} drain(ed|ing): 'disk replace'"
            fake.wait_until(lambda calls: edited(problem, calls), 30)
            assert edited(problem)[0][0] == board_ts  # the board itself, edited
            drained = rf"• {node} drain(ed|ing): 'disk replace'"
            fake.wait_until(lambda calls: posts(drained, calls), 30)
            assert posts(drained)[0].startswith("🟡 testcluster is DEGRADED")  # the change
            assert len(posts(boards)) == 1  # the board was not re-posted

            fake.fail("chat.update", error="message_not_found")  # deleted in Slack
            slurm_update(node, "state=resume")
            fake.wait_until(lambda calls: len(posts(boards, calls)) == 2, 30)
            fake.wait_count("pins.add", 2)
            fake.wait_until(lambda calls: posts(rf"• {node} back to ", calls), 30)
            pins = [c.params["timestamp"] for c in fake.of("pins.add")]
            assert len(pins) == 2 and pins[1] != board_ts  # the new board, pinned
            [row] = [b.delivery_id for b in store.boards(harness.queue.engine,
                                                         "testcluster").values()]
            with harness.queue.engine.connect() as conn:
                progress = conn.execute(select(deliveries.c.progress).where(
                    deliveries.c.id == row)).scalar()
            assert pins[1] in progress  # the board's row now edits the new message
        finally:
            subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"],
                           capture_output=True, timeout=30)
            harness.stop()
            stop.set()
            thread.join(10)
            platform.close()
