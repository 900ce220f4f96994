"""Admins steer the telemetry daemons from chat (`telemetry dump on|off`, `telemetry exit`):
the real `chatops chat` against the real broker (Tansu) and a real `chatops telemetry` daemon."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chatops.test_alarms import admin_notices
from tests.dispatcher.telemetry.test_kafka import NODE, daemons, ini, kafka_broker  # noqa: F401
from tests.support.cli import TEST_CONFIG, Chatops, spine_env
from tests.support.notify import free_port

pytestmark = pytest.mark.slow  # a broker and a daemon


def chatops_with(tmp_path: Path, broker: str, **extra: str) -> Chatops:
    """The spine config plus a `telemetry` section naming ``broker`` and cluster steer.example."""
    config = tmp_path / "job_configs.py"
    config.write_text(f"exec(open({str(TEST_CONFIG)!r}).read())\n"
                      f"telemetry = {{'broker': {broker!r}, 'clusters': ['steer.example']}}\n")
    home = tmp_path / "home"
    home.mkdir()
    chatops = Chatops(home, spine_env(home, CHATOPS_CONFIG=str(config), **extra))
    chatops("db", "upgrade", check=True)
    return chatops


def test_an_admin_turns_the_dump_on_then_stops_a_daemon(kafka_broker, tmp_path,  # noqa: F811
                                                        daemons):  # noqa: F811
    kafka_broker.create_topics("steer.example.sample", "steer.example.control.node",
                               "steer.example.control.master")
    daemon = daemons(tmp_path / "node", ini(
        tmp_path, "node", "steer.example", "node", kafka_broker.address,
        "[sample]\ncadence = 1s\nload = false\n")).start()
    chatops = chatops_with(tmp_path, kafka_broker.address)

    on = chatops.chat("telemetry dump on steer.example", user="bob")
    assert on.stdout.strip() == ("Told every telemetry daemon of cluster `steer.example` to "
                                 "turn the debug dump on.")
    daemon.wait_log("control message: dump true")
    stop = chatops.chat(f"telemetry exit steer.example {NODE}", user="bob")
    assert stop.stdout.strip() == (f"Told the telemetry daemons on `{NODE}` of cluster "
                                   "`steer.example` to exit.")
    assert daemon.process.wait(30) == 0
    assert "control message: exit" in daemon.log()
    assert admin_notices(chatops) == [  # audited: the admin channel hears of both
        "Telemetry: console:bob told every telemetry daemon of cluster `steer.example` to turn "
        "the debug dump on.",
        f"Telemetry: console:bob told the telemetry daemons on `{NODE}` of cluster "
        "`steer.example` to exit."]


def test_who_may_not_and_what_is_wrong_is_said(kafka_broker, tmp_path):  # noqa: F811
    chatops = chatops_with(tmp_path, kafka_broker.address)
    refused = chatops.chat("telemetry exit steer.example c1-1", user="alice")
    assert (refused.returncode, refused.stdout.strip()) == (
        1, "Only admins may steer the telemetry daemons.")
    unknown = chatops.chat("telemetry dump off elsewhere", user="bob")
    assert unknown.stdout.strip() == ("No telemetry cluster `elsewhere`: this service knows "
                                      "`steer.example`.")
    usage = chatops.chat("telemetry exit steer.example", user="bob")
    assert usage.stdout.startswith(
        "Sorry, I didn't understand `telemetry exit steer.example`. Use `telemetry dump on|off "
        "<cluster> [node]` or `telemetry exit <cluster> <node>`.")


def test_a_broker_that_does_not_answer_is_said(tmp_path):
    chatops = chatops_with(tmp_path, f"127.0.0.1:{free_port()}")
    down = chatops.chat("telemetry dump on steer.example", user="bob", timeout=90)
    assert down.stdout.startswith("Could not tell every telemetry daemon of cluster "
                                  "`steer.example` to turn the debug dump on: ")
    assert down.stdout.strip().endswith("Nothing was sent; try again when the broker answers.")
