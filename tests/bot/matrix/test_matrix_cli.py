"""`chatops bot matrix` as a real process against Synapse: it starts from the environment,
joins a group room on invite, answers a command there as a reply, and never logs its password."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chatops import identities
from chatops.service import open_service
from chatops.settings import load_settings
from tests.support.wait import wait_until

from .conftest import CONFIG, PASSWORD

pytestmark = pytest.mark.slow  # needs the test cluster, Synapse or a browser

CHATOPS = str(Path(sys.executable).parent / "chatops")


def test_chatops_bot_matrix_in_a_group_room(users, synapse, tmp_path):
    bot, alice, carol = users("chatops"), users("alice"), users("carol")
    (tmp_path / "job_configs.py").write_text(CONFIG)
    (tmp_path / "workspace" / "example").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CHATOPS_", "MATRIX_", "SLACK_", "TELEGRAM_", "DISCORD_"))}
    env.update(CHATOPS_HOME=str(tmp_path / "home"), CHATOPS_CONFIG=str(tmp_path / "job_configs.py"),
               CHATOPS_WORKSPACE_DIR=str(tmp_path / "workspace"), CHATOPS_LOG_LEVEL="DEBUG",
               MATRIX_HOMESERVER_URL=synapse.url, MATRIX_USER_ID=bot.user_id,
               MATRIX_PASSWORD=PASSWORD)
    subprocess.run([CHATOPS, "db", "upgrade"], env=env, check=True, capture_output=True)
    log = tmp_path / "bot.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([CHATOPS, "bot", "matrix"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        room_id = alice.run(alice.client.room_create(
            name="group", invite=[bot.user_id, carol.user_id])).room_id
        carol.run(carol.client.join(room_id))
        [hello] = alice.messages_from(room_id, bot.user_id, 1)
        assert f"--mail-user=matrix:{room_id}" in hello["body"]

        asked = alice.run(alice.client.room_send(room_id, "m.room.message", {
            "msgtype": "m.text", "body": "!status"})).event_id
        status = alice.messages_from(room_id, bot.user_id, 2)[1]
        assert status["msgtype"] == "m.notice"
        assert status["m.relates_to"] == {"m.in_reply_to": {"event_id": asked}}

        # alice leaves, carol is still there: the bot stays and the room stays opted in
        alice.run(alice.client.room_leave(room_id))
        carol.run(carol.client.room_send(room_id, "m.room.message", {
            "msgtype": "m.text", "body": "!status"}))
        carol.messages_from(room_id, bot.user_id, 3)  # answered after it saw alice leave
        engine = open_service(load_settings(env), need_schema=False).queue.engine
        assert identities.is_opted_in(engine, "matrix", room_id)
        carol.run(carol.client.room_leave(room_id))
        wait_until(lambda: not identities.is_opted_in(engine, "matrix", room_id),
                   what="the opt-out once everyone left")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    text = log.read_text()
    assert "matrix: syncing as " + bot.user_id in text
    assert PASSWORD not in text
