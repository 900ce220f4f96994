"""``calculations["register_from"]``: a new person becomes a user only from the places listed;
from elsewhere they are told where to register, and the refusal is audited. Users already,
and admins, are not affected."""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from chatops.calc import store
from chatops.calc.admin import CalcAdmin
from chatops.calc.submit import Attachment, Submitter, register
from chatops.config_loader import build_config
from chatops.db import audit, jobs
from chatops.events import Requester
from chatops.queue import Queue
from tests.support.calc import local_queue

CLUSTER = {"host": "login.example.org", "user": "chatops", "key_file": "/k",
           "known_hosts": "/kh"}
RUNNERS = {"hpc": {"shout": {"program": "shout", "extensions": [".gjf"]}}}
DEC = datetime(2026, 12, 15, 12, tzinfo=UTC).timestamp()
PLACES = {"telegram:-1009": "the HPC users group (Telegram)", "slack:T0123": "",
          "discord:555": ""}
WHERE = ("new users register for calculations only from the HPC users group (Telegram), Slack "
         "workspace T0123 or Discord server or channel 555. Register there first (send a "
         "file, or /start on Telegram); after that you can run calculations from anywhere, "
         "here too.")


def telegram(user: str = "42", chat: str | None = None) -> Requester:
    return Requester(platform="telegram", user=user, channel=chat or user, user_name="alice",
                     is_direct=chat is None, is_guest=False)


@pytest.fixture
def env(tmp_path: Path):
    def make(places):
        settings, queue = local_queue(tmp_path)
        config = build_config({}, {"hpc": CLUSTER}, runners=RUNNERS, admins=["console:bob"],
                              calculations={"register_from": places,
                                            "audit_channel": "console:audit"})
        submitter = Submitter(settings, config, queue)
        admin = CalcAdmin(settings, config, queue, lambda job_id, who: "")

        def submit(who: Requester) -> str:
            data = b"H 0 0 0\n"
            return submitter.submit(who, [], Attachment("w.gjf", 8, lambda: data),
                                    now=DEC).text

        def say(who: Requester, text: str) -> str:
            return admin.handle(who, text.split(), now=DEC).text

        return queue, config, submit, say
    return make


def audited(queue: Queue) -> list[tuple[str, str]]:
    with queue.engine.connect() as conn:
        return [(r.action, r.detail) for r in conn.execute(select(audit).order_by(audit.c.id))]


def test_a_new_person_registers_only_from_a_listed_place(env) -> None:
    queue, config, submit, say = env(PLACES)
    assert submit(telegram()) == f"Not submitted: {WHERE}"
    assert store.user(queue.engine, "telegram:42") is None
    with queue.engine.connect() as conn:
        assert conn.execute(select(jobs.c.id)).all() == []
    assert audited(queue) == [("refused", f"telegram:42 (alice): Not submitted: {WHERE}")]
    assert say(telegram(), "profile Ada Lovelace Chemistry") == f"Not registered: {WHERE}"
    assert register(queue, config, telegram()) == f"Not registered: {WHERE}"  # /start
    assert store.user(queue.engine, "telegram:42") is None
    # from the group: a user; from then on, anywhere
    assert register(queue, config, telegram(chat="-1009")) is None
    assert submit(telegram()).startswith("Calculation 1: `w.gjf` is queued")
    assert say(telegram(), "profile Ada Lovelace Chemistry") == (
        "Your profile is now: Ada Lovelace, Chemistry.")
    assert [a for a, _ in audited(queue)] == ["refused", "refused", "refused", "registered",
                                              "submitted", "profile"]


def test_slack_workspaces_and_channels_and_discord_servers_are_places(env) -> None:
    queue, _, submit, _ = env(["slack:T0123", "slack:C777", "discord:555"])
    in_workspace = Requester(platform="slack", user="U1", channel="D1", workspace="T0123")
    elsewhere = Requester(platform="slack", user="U2", channel="D2", workspace="T9999")
    in_channel = Requester(platform="slack", user="U3", channel="C777", workspace="T9999")
    in_guild = Requester(platform="discord", user="9", channel="123", workspace="555")
    for who in (in_workspace, in_channel, in_guild):
        assert re.match(r"Calculation \d+: ", submit(who)), who
    assert submit(elsewhere) == (
        "Not submitted: new users register for calculations only from Slack workspace T0123, "
        "Slack channel C777 or Discord server or channel 555. Register there first (send a "
        "file, or /start on Telegram); after that you can run calculations from anywhere, "
        "here too.")


def test_admins_and_linked_accounts_of_users_are_not_refused(env) -> None:
    queue, _, submit, say = env(PLACES)
    admin = Requester(platform="console", user="bob", channel="c1")
    assert submit(admin).startswith("Calculation 1: ")
    stranger = Requester(platform="console", user="eve", channel="c2", user_name="eve")
    code = re.search(r"`link (\w+)`", say(stranger, "link"))[1]
    assert say(telegram(), f"link {code}") == f"Not registered: {WHERE}"  # neither is a user
    code = re.search(r"`link (\w+)`", say(admin, "link"))[1]
    assert say(telegram(), f"link {code}").startswith(  # the code's maker is a user
        "This account and console:bob are one person now")


def test_an_empty_list_leaves_registration_to_the_admins(env) -> None:
    queue, _, submit, say = env([])
    refused = ("Not submitted: new users of calculations are added by an admin. Ask one to "
               "approve you (`approve telegram:42`).")
    assert submit(telegram(chat="-1009")) == refused
    admin = Requester(platform="console", user="bob", channel="c1")
    assert say(admin, "approve telegram:42").startswith("Approved telegram:42")
    assert submit(telegram()).startswith("Calculation 1: ")


def test_the_console_is_refused_unless_listed(chatops, tmp_path: Path) -> None:
    config = tmp_path / "configs.py"
    molecule = tmp_path / "water.gjf"
    molecule.write_bytes(b"H 0 0 0\n")

    def configure(places: object) -> None:
        config.write_text(textwrap.dedent(f"""
            raw_config = {{}}
            clusters = {{"hpc": {CLUSTER!r}}}
            runners = {RUNNERS!r}
            calculations = {{"register_from": {places!r}}}
        """))

    chatops.env["CHATOPS_CONFIG"] = str(config)
    configure({"telegram:-1009": "the HPC users group"})
    refused = chatops.chat("run", "--file", str(molecule))
    assert (refused.returncode, refused.stdout) == (1, (
        "Not submitted: new users register for calculations only from the HPC users group. "
        "Register there first (send a file, or /start on Telegram); after that you can run "
        "calculations from anywhere, here too.\n"))
    exported = chatops("audit", "export", "--since", "2000-01-01", "--format", "jsonl",
                       check=True).stdout
    assert '"action": "refused", "subject": "console:alice"' in exported
    assert "console:alice (alice): Not submitted: new users register for calculations only " \
           "from the HPC users group." in exported
    configure(["console"])
    accepted = chatops.chat("run", "--file", str(molecule), "--no-wait")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.startswith("Calculation 1: `water.gjf` is queued for runner `shout`")
