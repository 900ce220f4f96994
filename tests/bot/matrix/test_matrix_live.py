"""Live progress in Matrix (issue 12, item 7): a 20 s job that prints a line a second gets one
m.notice, replaced (m.replace events) a bounded number of times, ending with a one-line final
state; the report is a new message."""

from __future__ import annotations

import re

import pytest

from chatops import identities
from chatops.events import Requester
from tests.support.wait import wait_until

from .conftest import PASSWORD

pytestmark = pytest.mark.slow  # needs Synapse, and a 20 s job

TICK = '''
raw_config["example"]["jobs"]["tick"] = {
    "run_args_template": "for i in $(seq 20); do echo tick $i; sleep 1; done",
    "report_stdout": True, "timeout": 60}
'''
FINAL = re.compile(r"`example_tick` \(job \d+\) succeeded after 0:00:(1[89]|2\d)\.")


def test_a_long_job_gets_one_message_replaced_as_it_goes_then_its_report(users, stack):
    bot, alice = users("chatops"), users("alice")
    running = stack(TICK, MATRIX_USER_ID=bot.user_id, MATRIX_PASSWORD=PASSWORD,
                    CHATOPS_PROGRESS_AFTER="2", CHATOPS_PROGRESS_EVERY="2")
    room_id = alice.run(alice.client.room_create(invite=[bot.user_id])).room_id
    wait_until(lambda: identities.is_opted_in(running.engine, "matrix", room_id), what="opt-in")
    running.service.queue.enqueue("example_tick", {},
                                  Requester("matrix", alice.user_id, channel=room_id),
                                  timeout=60)

    def bot_events() -> list[dict]:
        return [e for e in alice.events(room_id)
                if e["sender"] == bot.user_id and e["type"] == "m.room.message"]

    def final() -> bool:
        # The report is a message of its own: a progress edit's last lines say "tick 20" too,
        # and the final edit may arrive before the report.
        events = bot_events()
        return (any("tick 20" in e["content"].get("body", "")
                    and "m.relates_to" not in e["content"] for e in events)
                and any(FINAL.search(e["content"].get("m.new_content", {}).get("body", ""))
                        for e in events))

    wait_until(final, 60, "the report and the final line")
    events = bot_events()
    (progress,) = [e for e in events if "is running:" in e["content"].get("body", "")
                   and "m.relates_to" not in e["content"]]
    edits = [e["content"] for e in events if "m.relates_to" in e["content"]]
    assert {c["m.relates_to"]["rel_type"] for c in edits} == {"m.replace"}
    assert {c["m.relates_to"]["event_id"] for c in edits} == {progress["event_id"]}
    assert 3 <= len(edits) <= 12
    assert FINAL.search(edits[-1]["m.new_content"]["body"])
    assert edits[-1]["body"].startswith("* ")  # the fallback clients without edits show
    reports = [e for e in events if "tick 20" in e["content"].get("body", "")
               and "m.relates_to" not in e["content"]]
    assert reports and events.index(reports[-1]) > events.index(progress)


def test_a_resend_after_a_crash_is_one_event_thanks_to_transaction_ids(users, synapse, tmp_path):
    """The sender died after Synapse took the message, before its progress was saved: the
    next attempt sends it again with the same transaction id, and the room shows it once."""
    from bot.matrix import MatrixPlatform
    from chatops.platform import Delivery
    from chatops.report import notice

    from .conftest import make_service

    bot, alice = users("chatops"), users("alice")
    room_id = alice.run(alice.client.room_create(invite=[bot.user_id])).room_id
    bot.run(bot.client.join(room_id))
    service = make_service(tmp_path, {"MATRIX_HOMESERVER_URL": synapse.url,
                                      "MATRIX_USER_ID": bot.user_id,
                                      "MATRIX_ACCESS_TOKEN": bot.token})
    platform = MatrixPlatform.create(service)
    try:
        for _ in range(2):  # the same row, its progress lost with the first sender
            platform.deliver(Delivery(id=41, platform="matrix", channel=room_id, thread=None,
                                      message=None, is_direct=False,
                                      payload=notice("sent once"), attempts=1))
    finally:
        platform.close()
    wait_until(lambda: any(e["content"].get("body") == "sent once" for e in alice.events(room_id)),
               30, "the notice")
    sent = [e for e in alice.events(room_id) if e["content"].get("body") == "sent once"]
    assert len(sent) == 1


def test_a_board_is_pinned_where_allowed_and_posted_anew_when_redacted(users, synapse, tmp_path,
                                                                       caplog):
    """The monitor's board in a room: posted (the bot may not pin yet: logged), replaced; the
    board redacted, the next text is a new message, pinned now that the bot is a moderator,
    and replaced from then on."""
    import logging

    from bot.matrix import MatrixPlatform
    from chatops.monitor_texts import payload
    from chatops.platform import Delivery

    from .conftest import make_service

    bot, alice = users("chatops"), users("alice")
    room_id = alice.run(alice.client.room_create(invite=[bot.user_id])).room_id
    bot.run(bot.client.join(room_id))
    service = make_service(tmp_path, {"MATRIX_HOMESERVER_URL": synapse.url,
                                      "MATRIX_USER_ID": bot.user_id,
                                      "MATRIX_ACCESS_TOKEN": bot.token})
    platform = MatrixPlatform.create(service)
    progress: dict = {}

    def send(text: str) -> None:
        platform.deliver(Delivery(id=51, platform="matrix", channel=room_id, thread=None,
                                  message=None, is_direct=False, attempts=1, progress=progress,
                                  payload=payload("saga", "board", "online", text)))

    def pinned() -> list[str]:
        answer = alice.run(alice.client.room_get_state_event(room_id, "m.room.pinned_events"))
        return list(getattr(answer, "content", {}).get("pinned", []))

    try:
        with caplog.at_level(logging.WARNING, logger="chatops.live"):
            send("🟢 saga: ONLINE for 1 min")
        first = progress["live"]
        assert pinned() == []
        assert any(r.getMessage().startswith("delivery 51: could not pin the message in matrix ")
                   for r in caplog.records)
        send("🟡 saga: DEGRADED for 0 s")
        levels = alice.run(alice.client.room_get_state_event(room_id, "m.room.power_levels"))
        levels.content["users"][bot.user_id] = 50
        alice.run(alice.client.room_put_state(room_id, "m.room.power_levels", levels.content))
        alice.run(alice.client.room_redact(room_id, first))  # deleted in the room
        send("🟢 saga: ONLINE for 0 s")
        second = progress["live"]
        assert second != first and pinned() == [second]
        send("🟢 saga: ONLINE for 1 min")
    finally:
        platform.close()
    events = [e for e in alice.events(room_id) if e["sender"] == bot.user_id]
    posts = [e["content"].get("body") for e in events if "m.relates_to" not in e["content"]]
    assert posts[-1] == "🟢 saga: ONLINE for 0 s"  # the new board (the first is redacted)
    replaced = [(e["content"]["m.relates_to"]["event_id"], e["content"]["m.new_content"]["body"])
                for e in events if "m.relates_to" in e["content"]]
    assert replaced == [(first, "🟡 saga: DEGRADED for 0 s"),
                        (second, "🟢 saga: ONLINE for 1 min")]
