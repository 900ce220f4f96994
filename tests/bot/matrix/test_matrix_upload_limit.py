"""A file larger than CHATOPS_MATRIX_UPLOAD_LIMIT is not uploaded to the homeserver: the room gets
a notice saying how large it is and where it stays (a real Synapse, the real Dispatcher)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # needs Synapse


def test_a_file_over_the_upload_limit_is_a_notice(users, stack) -> None:
    bot, alice = users("chatops"), users("alice")
    stack(MATRIX_USER_ID=bot.user_id, MATRIX_ACCESS_TOKEN=bot.token,
          CHATOPS_MATRIX_UPLOAD_LIMIT="100")
    room_id = alice.run(alice.client.room_create(invite=[bot.user_id])).room_id
    alice.messages_from(room_id, bot.user_id, 1)  # the --mail-user notice: the bot is in
    alice.run(alice.client.room_send(room_id, "m.room.message",
                                     {"msgtype": "m.text", "body": "!run example file 300"}))
    note = alice.messages_from(room_id, bot.user_id, 3)[2]
    assert note["msgtype"] == "m.notice"
    assert note["body"] == ("The file example_file-1.txt is 300 bytes, more than this "
                            "homeserver accepts (100 bytes); it stays in the job's log folder.")
    assert note["formatted_body"] == (
        "The file <code>example_file-1.txt</code> is 300 bytes, more than this homeserver "
        "accepts (100 bytes); it stays in the job's log folder.")
