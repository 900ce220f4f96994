"""The Slack test stack: the real Bolt app served through Flask on 127.0.0.1, the real
Dispatcher and the Sender, and a fake Slack Web API recording every call (tests and
bench/slack.py)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from bot.sender import Sender
from bot.slack import SlackPlatform
from chatops import migrate
from chatops.commands import CommandHandler
from chatops.service import Service, open_queue, open_service
from chatops.settings import load_settings
from dispatcher.loop import Dispatcher
from tests.support.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.support.serving import server_thread
from webserver.app import create_app

WORKSPACE = Path(__file__).resolve().parents[1] / "bot" / "slack" / "workspace"
CONFIG = Path(__file__).resolve().parent / "slack_config.py"
_ts = itertools.count(1)


def new_ts() -> str:
    return f"1700001{next(_ts):03d}.000200"


def slack_env(home: Path, fake: FakeSlack, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CHATOPS_", "SLACK_"))}
    env.update(CHATOPS_HOME=str(home), CHATOPS_CONFIG=str(CONFIG),
               CHATOPS_WORKSPACE_DIR=str(WORKSPACE), CHATOPS_POLL_INTERVAL="0.2",
               CHATOPS_KILL_GRACE_SECONDS="1", CHATOPS_LOG_LEVEL="INFO",
               SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
               SLACK_API_URL=fake.url, CHATOPS_SLACK_SUPPORT_CHANNEL="CSUPPORT")
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def make_service(home: Path, fake: FakeSlack, **extra: str) -> Service:
    settings = load_settings(slack_env(home, fake, **extra))
    migrate.upgrade(open_queue(settings, need_schema=False).engine)
    return open_service(settings)


def sign(body: bytes, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def event_body(event: dict[str, Any]) -> bytes:
    return json.dumps({
        "token": "unused", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
        "event_id": f"Ev{event['ts'].replace('.', '')}", "event_time": int(time.time()),
        "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
        "event": event,
    }).encode()


def mention(text: str, user: str = "U_MEMBER", channel: str = "C1",
            thread_ts: str | None = None, **extra: Any) -> dict[str, Any]:
    ts = new_ts()
    event = {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel,
             "event_ts": ts, **extra}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def direct(text: str, user: str = "U_MEMBER", channel: str = "D1", **extra: Any
           ) -> dict[str, Any]:
    ts = new_ts()
    return {"type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts,
            "channel": channel, "event_ts": ts, **extra}


class Stack:
    """Everything between Slack and the job, really running."""

    def __init__(self, home: Path, fake: FakeSlack, dispatcher: bool = True, **extra: str):
        self.fake = fake
        self.service = make_service(home, fake, **extra)
        self.queue = self.service.queue
        handler = CommandHandler(self.service.settings, self.service.config, self.queue)
        self.platform = SlackPlatform.create(self.service)
        # the service's own web app, Slack inside
        app = create_app(self.service, handler, [self.platform])
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/slack/events"
        self.stop = threading.Event()
        self.threads = [server_thread(self.server),
                        threading.Thread(target=Sender.for_service(self.service, self.platform).run,
                                         args=(self.stop,), daemon=True)]
        self.dispatcher = Dispatcher(self.service.settings, self.service.config, self.queue)
        if dispatcher:
            self.threads.append(threading.Thread(target=self.dispatcher.run, daemon=True))
        for thread in self.threads:
            thread.start()

    def send(self, event: dict[str, Any], *, timestamp: str | None = None,
             secret: str = SIGNING_SECRET, body: bytes | None = None) -> int:
        body = event_body(event) if body is None else body
        timestamp = timestamp or str(int(time.time()))
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(body, timestamp, secret)})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def close(self) -> None:
        self.stop.set()
        self.dispatcher.stop()
        self.server.shutdown()
        for thread in self.threads:
            thread.join(timeout=10)
        self.server.server_close()

    # -- what Slack saw ---------------------------------------------------------------------

    def posts(self, channel: str | None = None) -> list[tuple[str, str | None, str]]:
        return [(c.params["channel"], c.params.get("thread_ts"), c.params.get("text"))
                for c in self.fake.of("chat.postMessage")
                if channel is None or c.params["channel"] == channel]

    def reactions(self) -> list[tuple[str, str, str]]:
        return [(c.params["channel"], c.params["timestamp"], c.params["name"])
                for c in self.fake.of("reactions.add")]

    def wait_posts(self, count: int, timeout: float = 15) -> list[tuple[str, str | None, str]]:
        self.fake.wait_count("chat.postMessage", count, timeout)
        return self.posts()

    def wait_reactions(self, count: int, timeout: float = 15) -> list[tuple[str, str, str]]:
        self.fake.wait_count("reactions.add", count, timeout)
        return self.reactions()

    def deliveries(self, settled: int = 0, timeout: float = 15) -> list[tuple]:
        """(state, attempts, last_error) of every delivery, once ``settled`` of them ended."""
        deadline = time.time() + timeout
        while True:
            with self.queue.engine.connect() as conn:
                rows = [tuple(r) for r in conn.exec_driver_sql(
                    "SELECT state, attempts, last_error FROM deliveries ORDER BY id")]
            if sum(r[0] in ("delivered", "dead") for r in rows) >= settled:
                return rows
            if time.time() > deadline:
                raise AssertionError(f"deliveries did not settle: {rows}")
            time.sleep(0.05)

    def settle(self, seconds: float = 0.5) -> None:
        """Wait a little to show nothing more happens."""
        time.sleep(seconds)
