"""Matrix access rules rest on the user id (``@name:server``), never on a display name, which
anyone can set to anything — even to someone else's id."""

from __future__ import annotations

import pytest

from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # needs Synapse


def test_a_display_name_copying_an_allowed_id_is_refused(users, stack):
    bot, alice, mallory = users("chatops"), users("alice"), users("mallory")
    allowed = f"matrix:{alice.user_id}"
    mallory.run(mallory.client.set_displayname(allowed))
    running = stack(
        extra_config=f'''
raw_config["team"] = {{
    "description": "only alice",
    "allowed_users": [{allowed!r}],
    "jobs": {{"check": {{"run_args_template": "echo team ok", "report_stdout": True}}}},
    "slack": [{{"command": "check", "help": "check", "action": "schedule_job",
               "job_type": "check"}}],
}}
''', MATRIX_USER_ID=bot.user_id, MATRIX_ACCESS_TOKEN=bot.token)
    room_id = alice.run(alice.client.room_create(invite=[bot.user_id, mallory.user_id])).room_id
    alice.messages_from(room_id, bot.user_id, 1)  # the --mail-user notice: the bot is in
    mallory.run(mallory.client.join(room_id))
    wait_until(lambda: mallory.user_id in (running.platform.client.rooms.get(room_id).users
                                           if running.platform.client.rooms.get(room_id)
                                           else {}), what="the bot to see mallory join")

    def say(user, text: str) -> None:
        user.run(user.client.room_send(room_id, "m.room.message",
                                       {"msgtype": "m.text", "body": text}))

    say(mallory, "!run team check")
    refusal = alice.messages_from(room_id, bot.user_id, 2)[1]["body"]
    assert refusal == (f"Sorry, `team` is limited to the users listed for it, and you "
                       f"(matrix:{mallory.user_id}) are not one of them. Ask an admin to add "
                       "you to its `allowed_users`.")
    assert running.service.queue.history(5) == []
    say(alice, "!run team check")
    assert alice.messages_from(room_id, bot.user_id, 3)[2]["body"] == "team ok"
    assert [job.requested_by for job in running.service.queue.history(5)] == [alice.user_id]
