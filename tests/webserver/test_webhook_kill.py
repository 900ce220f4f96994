"""A web server SIGKILLed during a flood of GitHub webhooks loses none of them: every delivery
GitHub redelivers afterwards is scheduled exactly once (issue 13, item 2)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from chatops.db import jobs, webhook_deliveries
from chatops.service import open_queue
from chatops.settings import load_settings
from tests.support.cli import Chatops
from tests.support.wait import wait_until
from tests.support.web import SECRET, WEB_CONFIG, hook_headers

FLOOD = 300
KILL_AFTER = 60  # answers before the SIGKILL: the rest are in flight or not sent yet


def push(n: int) -> bytes:
    sha = f"{n:040x}"
    return json.dumps({"ref": "refs/heads/master", "after": sha,
                       "pusher": {"name": f"dev{n}"}, "repository": {"default_branch": "master"},
                       "sender": {"login": f"dev{n}"}}).encode()


def deliver(base: str, n: int) -> int | None:
    """POST push ``n`` as GitHub does (its delivery id is fixed): the status, None if the
    connection broke."""
    body = push(n)
    request = urllib.request.Request(f"{base}/github/site/", data=body, method="POST",
                                     headers=hook_headers("push", body, f"delivery-{n}"))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def start_web(chatops: Chatops) -> tuple[subprocess.Popen, str]:
    process = chatops.start("web", "--port", "0")
    log = chatops.home / f"web-{len(chatops.processes) - 1}.log"
    found = wait_until(lambda: re.search(r"web: (http://127\.0\.0\.1:\d+)/",
                                         log.read_text(errors="replace")),
                       timeout=60, what="chatops web to listen")
    return process, found.group(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def chatops(request, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATOPS_", "GITHUB_"))}
    env.update(CHATOPS_HOME=str(home), CHATOPS_CONFIG=str(WEB_CONFIG),
               CHATOPS_WORKSPACE_DIR=str(home), GITHUB_WEBHOOK_SECRET=SECRET,
               CHATOPS_WEB_TOKEN="x" * 32)
    if request.param == "postgresql":
        env["CHATOPS_DATABASE_URL"] = request.getfixturevalue("pg_url")
    runner = Chatops(home, env)
    runner("db", "upgrade", check=True)
    yield runner
    runner.stop_all()


@pytest.mark.slow
def test_a_sigkilled_web_server_loses_no_webhook(chatops):
    web, base = start_web(chatops)
    answered = []
    lock = threading.Lock()

    def send(n: int) -> None:
        status = deliver(base, n)
        with lock:
            answered.append(status)
            if len(answered) == KILL_AFTER:
                os.killpg(web.pid, signal.SIGKILL)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(send, range(FLOOD)))
    assert web.wait(10) == -signal.SIGKILL
    assert answered.count(202) >= KILL_AFTER // 2, answered  # the flood was under way

    # GitHub redelivers what failed; redeliver everything: what was handled stays handled.
    _, base = start_web(chatops)
    with ThreadPoolExecutor(8) as pool:
        again = list(pool.map(lambda n: deliver(base, n), range(FLOOD)))
    assert set(again) <= {200, 202}, again

    settings = load_settings(chatops.env)
    queue = open_queue(settings)
    with queue.engine.connect() as conn:
        recorded = {row.delivery_id: row for row in conn.execute(select(webhook_deliveries))}
        queued = {row.id: json.loads(row.args)["sha"] for row in conn.execute(select(jobs))}
    queue.engine.dispose()
    assert len(queued) == FLOOD, "a delivery was scheduled twice, or not at all"
    for n in range(FLOOD):
        row = recorded[f"delivery-{n}"]
        assert (row.outcome, queued[row.job_id]) == ("scheduled", f"{n:040x}")
