"""`schedules`, `pause schedule`, `resume schedule` in chat: answers, access, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatops import migrate
from chatops.commands import CommandHandler, Incoming
from chatops.config_loader import build_config
from chatops.events import Requester
from chatops.service import open_queue
from chatops.settings import load_settings
from tests.support.cli import spine_env

ALICE = Requester("slack", "U1", channel="C1", user_name="alice")
MALLORY = Requester("slack", "U9", channel="C1", user_name="mallory")


@pytest.fixture
def handler(tmp_path: Path) -> CommandHandler:
    settings = load_settings(spine_env(tmp_path))
    queue = open_queue(settings, need_schema=False)
    migrate.upgrade(queue.engine)
    config = build_config({"ops": {
        "allowed_users": ["slack:U1"], "default_channel": "slack:C1",
        "jobs": {"check": {"run_args_template": "echo checked"}},
        "schedules": [{"name": "nightly", "job_type": "check", "cron": "0 2 * * *",
                       "timezone": "Europe/Oslo"}]},
        "quiet": {"jobs": {"check": {"run_args_template": "true"}}}})
    return CommandHandler(settings, config, queue)


def say(handler: CommandHandler, text: str, who: Requester = ALICE):
    response = handler.handle(Incoming(who, text))
    return response, "\n".join(r.text for r in response.replies)


def test_pause_and_resume_by_an_allowed_user(handler: CommandHandler) -> None:
    response, text = say(handler, "pause schedule ops nightly")
    assert response.acknowledged and text == (
        "Paused schedule `ops/nightly`: it will not run until `resume schedule ops nightly`.")
    assert say(handler, "pause schedule ops nightly")[1] == (
        "Schedule `ops/nightly` is already paused.")
    listing = say(handler, "schedules")[1]
    assert listing.startswith("Schedules (1):\n• `ops/nightly`: `ops_check`, cron 0 2 * * * "
                              "(Europe/Oslo); paused by alice since ")
    assert listing.endswith("; last: not run yet")
    assert "(0 schedules active, 1 paused)" in say(handler, "status")[1]
    response, text = say(handler, "resume schedule ops nightly")
    assert response.acknowledged and text.startswith("Resumed schedule `ops/nightly`; next run ")
    assert text.endswith("Runs missed while it was paused are not made up.")


def test_others_may_not_pause_and_bad_input_is_explained(handler: CommandHandler) -> None:
    response, text = say(handler, "pause schedule ops nightly", MALLORY)
    assert response.refused and text.startswith("Sorry, `ops` is limited to the users listed")
    response, text = say(handler, "pause schedule ops daily")
    assert not response.understood and text == (
        "Namespace `ops` has no schedule `daily` (its schedules: `nightly`).")
    assert say(handler, "resume schedule web nightly")[1] == (
        "There is no namespace `web`. `schedules` lists every schedule.")
    assert say(handler, "pause schedule quiet nightly")[1] == (
        "Namespace `quiet` has no schedules: job_configs.py lists them under its `schedules`.")
    response, text = say(handler, "pause nightly")
    assert not response.understood and text.startswith(
        "Sorry, I didn't understand `pause nightly`. Use `pause schedule <namespace> <name>` "
        "(`schedules` lists them).")
