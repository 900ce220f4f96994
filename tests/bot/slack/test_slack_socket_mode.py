"""Socket Mode: the real SocketModeClient against a local websocket, same events, same answers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.sender import Sender
from bot.slack import SlackPlatform
from chatops.commands import CommandHandler
from dispatcher.loop import Dispatcher
from tests.support.fake_slack import APP_TOKEN, FakeSlack
from tests.support.fake_socket_mode import FakeSocketMode
from tests.support.slack import direct, event_body, make_service, mention, slack_env

pytestmark = pytest.mark.slow  # whole stacks and real processes: seconds per test


@contextmanager
def running(home: Path, fake: FakeSlack, before_serve: Callable[[], None] = lambda: None
            ) -> Iterator[FakeSocketMode]:
    """The Slack platform served over Socket Mode, with a dispatcher and an outbox."""
    with FakeSocketMode() as ws:
        fake.socket_url = ws.url
        service = make_service(home, fake, SLACK_APP_TOKEN=APP_TOKEN, SLACK_SIGNING_SECRET="")
        platform = SlackPlatform.create(service)
        handler = CommandHandler(service.settings, service.config, service.queue)
        dispatcher = Dispatcher(service.settings, service.config, service.queue)
        stop = threading.Event()
        threads = [
            threading.Thread(target=platform.serve, args=(handler, stop), daemon=True),
            threading.Thread(target=Sender.for_service(service, platform).run,
                             args=(stop,), daemon=True),
            threading.Thread(target=dispatcher.run, daemon=True),
        ]
        before_serve()
        for thread in threads:
            thread.start()
        try:
            yield ws
        finally:
            stop.set()
            dispatcher.stop()
            for thread in threads:
                thread.join(10)


@pytest.fixture
def socket_mode(tmp_path: Path, fake: FakeSlack) -> Iterator[tuple[FakeSlack, FakeSocketMode]]:
    with running(tmp_path, fake) as ws:
        assert ws.connected.wait(10), "the Socket Mode client did not connect"
        yield fake, ws


def test_a_mention_over_socket_mode_is_acknowledged_and_answered(socket_mode) -> None:
    fake, ws = socket_mode
    event = mention("<@UBOT> example say hello Bob")
    ws.wait_ack(ws.send_event(json.loads(event_body(event))))
    fake.wait_count("reactions.add", 2)
    posts = fake.wait_count("chat.postMessage", 1)
    assert [(c.params["channel"], c.params["thread_ts"], c.params["text"]) for c in posts] == [
        ("C1", event["ts"], "Hello Bob")]
    assert sorted(c.params["name"] for c in fake.of("reactions.add")) == [
        "eyes", "white_check_mark"]
    opened = fake.of("apps.connections.open")
    assert opened and all(c.token == APP_TOKEN for c in opened)


def test_help_in_a_direct_message_over_socket_mode(socket_mode) -> None:
    fake, ws = socket_mode
    event = direct("status")
    ws.wait_ack(ws.send_event(json.loads(event_body(event))))
    posts = fake.wait_count("chat.postMessage", 1)
    assert [(c.params["channel"], c.params.get("thread_ts"), c.params["text"])
            for c in posts] == [
        ("D1", None, "Nothing is running or scheduled, and no jobs are suppressed.")]


def test_a_failed_connection_is_retried(tmp_path: Path, fake: FakeSlack) -> None:
    def slack_is_down() -> None:
        fake.fail("apps.connections.open", error="internal_error")

    started = time.time()
    with running(tmp_path, fake, before_serve=slack_is_down) as ws:
        assert ws.connected.wait(10), "the Socket Mode client did not reconnect"
        assert time.time() - started >= 0.9
        assert len(fake.of("apps.connections.open")) == 3  # start-up check, failure, success


def test_chatops_run_answers_hello_bob_in_the_thread(tmp_path: Path, fake: FakeSlack) -> None:
    """The newcomer's first step: `chatops run` with the app's tokens and the shipped config."""
    repo = Path(__file__).resolve().parents[3]
    extra = {"SLACK_APP_TOKEN": APP_TOKEN, "SLACK_SIGNING_SECRET": "",
             "CHATOPS_CONFIG": str(repo / "job_configs.py"),
             "CHATOPS_WORKSPACE_DIR": str(repo / "workspace")}
    with FakeSocketMode() as ws:
        fake.socket_url = ws.url
        make_service(tmp_path, fake, **extra)
        log = open(tmp_path / "run.log", "wb")
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "chatops"), "run", "--port", "0"],
            env=slack_env(tmp_path, fake, **extra), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            assert ws.connected.wait(30), (tmp_path / "run.log").read_text()
            event = mention("<@UBOT> example say hello Bob")
            ws.wait_ack(ws.send_event(json.loads(event_body(event))))
            posts = fake.wait_count("chat.postMessage", 1, timeout=30)
            assert [(c.params["channel"], c.params["thread_ts"], c.params["text"])
                    for c in posts] == [("C1", event["ts"], "Hello Bob")]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            log.close()
