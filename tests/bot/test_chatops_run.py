"""`chatops run` as a process, with Telegram (long polling) and Discord (interactions on its web
server) configured: each answers a command and delivers the job's report."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.support.fake_discord import APP_ID, FakeDiscord, Signer, interaction
from tests.support.fake_telegram import FakeTelegram, private_message
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # whole stacks and real processes: seconds per test


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_chatops_run_serves_telegram_and_discord(make_service):
    telegram, discord_api, signer = FakeTelegram("7:run-token"), FakeDiscord(), Signer()
    service = make_service(TELEGRAM_BOT_TOKEN="7:run-token", TELEGRAM_API_URL=telegram.url,
                           DISCORD_BOT_TOKEN="discord-run-token", DISCORD_APPLICATION_ID=APP_ID,
                           DISCORD_PUBLIC_KEY=signer.public_hex, DISCORD_API_URL=discord_api.url)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "chatops.cli", "run", "--port", str(port)],
        env=dict(service.settings.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        wait_until(lambda: telegram.offsets, timeout=30, what="Telegram polling")
        telegram.push(private_message("example say hello Tom"))
        assert [c.params["text"] for c in telegram.wait_sent(1)] == ["Hello Tom"]

        body = json.dumps(interaction("run", options={"command": "example say hello Dee"})
                          ).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/discord/interactions",
                                         data=body, headers=signer.headers(body))
        wait_until(lambda: _up(port), timeout=30, what="the web server")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read()) == {"type": 5}
        calls = discord_api.wait_sent(2)
        assert sorted((c.method, c.body["content"]) for c in calls) == [
            ("PATCH", "Job 2 is queued; its report will follow here."),
            ("POST", "Hello Dee")]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        telegram.close()
        discord_api.close()
    assert "run-token" not in out + err  # secrets never reach the logs
    assert "platforms console, telegram, discord." in out


def _up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False
