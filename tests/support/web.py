"""Helpers for the web server's tests: a service on a private home, signatures, live servers."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from chatops import migrate
from chatops.service import Service, open_service
from chatops.settings import load_settings
from dispatcher.loop import Dispatcher
from tests.support.serving import server_thread
from tests.support.wait import wait_until
from webserver.app import create_app

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
WEB_CONFIG = TESTS / "support" / "web_config.py"
SECRET = "webhook-secret-for-tests"
EXAMPLES = REPO / "var/npm/node_modules/@octokit/webhooks-examples/api.github.com/index.json"


def web_service(home: Path, config: Path = WEB_CONFIG, workspace: Path | None = None,
                **env: str) -> Service:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("CHATOPS_", "GITHUB_", "SLACK_", "TELEGRAM_", "DISCORD_"))}
    base.update(CHATOPS_HOME=str(home), CHATOPS_CONFIG=str(config),
                CHATOPS_WORKSPACE_DIR=str(workspace or home / "workspace"),
                CHATOPS_KILL_GRACE_SECONDS="1", GITHUB_WEBHOOK_SECRET=SECRET)
    base.update(env)
    settings = load_settings({k: v for k, v in base.items() if v is not None})
    service = open_service(settings, need_schema=False)
    migrate.upgrade(service.queue.engine)
    return service


def sign(body: bytes, secret: str = SECRET, algorithm: str = "sha256") -> str:
    digest = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()
    return f"{algorithm}={digest}"


def hook_headers(event: str, body: bytes, delivery: str | None = None,
                 secret: str = SECRET) -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(body, secret), "Content-Type": "application/json"}


def load_examples() -> list[dict[str, Any]]:
    return json.loads(EXAMPLES.read_text())




class LiveWeb:
    """The app on Flask's development server (tests only) plus a real Dispatcher, in threads."""

    def __init__(self, service: Service, dispatcher: bool = True):
        self.service = service
        self.server = make_server("127.0.0.1", 0, create_app(service), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.threads = [server_thread(self.server)]
        self.dispatcher = None
        if dispatcher:
            self.dispatcher = Dispatcher(service.settings, service.config, service.queue)
            self.threads.append(threading.Thread(target=self.dispatcher.run, daemon=True))
        for thread in self.threads:
            thread.start()
        if self.dispatcher:
            wait_until(service.queue.dispatchers, what="the dispatcher to register")

    def close(self) -> None:
        self.server.shutdown()
        if self.dispatcher:
            self.dispatcher.stop()
        for thread in self.threads:
            thread.join(15)
