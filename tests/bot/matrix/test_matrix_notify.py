"""A Slurm notification end to end into Matrix: the bot records a room's opt-in on invite; a
MailProg event for ``--mail-user=matrix:<room id>`` goes through the notification pipeline
(NotifyIngest: receivers, the outbound table) and the Matrix bot's own sender, templates and
client to Synapse, where alice reads it as an m.notice with HTML. After the room opts out
nothing more goes there."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from chatops import identities, outbound
from dispatcher.notify_ingest import NotifyIngest
from tests.support.wait import wait_until

from .conftest import PASSWORD

pytestmark = pytest.mark.slow  # needs the test cluster, Synapse or a browser


def spool_event(directory: Path, job_id: int, name: str, mail_user: str) -> None:
    """A MailProg event as chatops-mailprog spools it (Slurm 22.05's environment)."""
    subject = f"Slurm Job_id={job_id} Name={name} Failed, Run time 00:00:04, FAILED, ExitCode 3"
    env = {"SLURM_CLUSTER_NAME": "testcluster", "SLURM_JOB_ID": str(job_id),
           "SLURM_JOB_NAME": name, "SLURM_JOB_MAIL_TYPE": "Failed", "SLURM_JOB_STATE": "FAILED",
           "SLURM_JOB_USER": "alice", "SLURM_JOB_PARTITION": "debug",
           "SLURM_JOB_EXIT_CODE": str(3 << 8), "SLURM_JOB_RUN_TIME": "00:00:04"}
    event_id = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{event_id}.json").write_text(json.dumps({
        "version": 1, "id": event_id, "argv": ["-s", subject, mail_user], "subject": subject,
        "mail_user": mail_user, "env": env, "received_at": "2026-11-24T02:00:00+00:00",
        "host": "vm"}))


def test_slurm_notification_reaches_the_opted_in_room(users, stack, tmp_path):
    bot, alice = users("chatops"), users("alice")
    running = stack(MATRIX_USER_ID=bot.user_id, MATRIX_PASSWORD=PASSWORD,
                    CHATOPS_SPOOL_DIR=str(tmp_path / "spool"))
    room_id = alice.run(alice.client.room_create(invite=[bot.user_id])).room_id
    wait_until(lambda: identities.is_opted_in(running.engine, "matrix", room_id), what="opt-in")
    alice.messages_from(room_id, bot.user_id, 1)

    service = running.service
    ingest = NotifyIngest(service.settings, service.config, service.queue, runner=None)
    try:
        assert "matrix" in ingest.available
        spool_event(tmp_path / "spool", 77, "<b>train</b>", f"matrix:{room_id}")
        assert ingest.scan() == 1
        wait_until(lambda: outbound.counts(running.engine, "matrix").get("delivered") == 1,
                   timeout=30, what="the bot's sender to send the notification")
        notice = alice.messages_from(room_id, bot.user_id, 2)[1]
        assert notice["msgtype"] == "m.notice"
        assert notice["format"] == "org.matrix.custom.html"
        assert "77" in notice["body"] and "<b>train</b>" in notice["body"]
        assert "&lt;b&gt;train&lt;/b&gt;" in notice["formatted_body"]
        assert "<b>train</b>" not in notice["formatted_body"]
        assert "<html" not in notice["formatted_body"]

        alice.run(alice.client.room_leave(room_id))  # the bot leaves and opts the room out
        wait_until(lambda: not identities.is_opted_in(running.engine, "matrix", room_id),
                   what="the opt-out")
        spool_event(tmp_path / "spool", 78, "later", f"matrix:{room_id}")
        assert ingest.scan() == 0  # refused: the room no longer asks for notifications
    finally:
        ingest.close()
