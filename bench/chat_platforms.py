"""Telegram and Discord latency against the local stand-ins of their APIs (the test fakes).

Telegram: a message pushed to the fake Bot API -> the bot's answer (PTB long polling), and ->
the job's report (Dispatcher + the Sender). Discord: a signed interaction -> the deferred
response, -> the edited original, -> the report in the channel. Run:
    .venv/bin/python bench/chat_platforms.py [N]
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from flask import Flask  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from chatops.commands import CommandHandler  # noqa: E402
from chatops.service import Service  # noqa: E402
from tests.support.chat import Running, chat_service  # noqa: E402
from tests.support.fake_discord import APP_ID, FakeDiscord, Signer, interaction  # noqa: E402
from tests.support.fake_telegram import FakeTelegram, private_message  # noqa: E402
from tests.support.wait import wait_until  # noqa: E402


def service(**env: str) -> Service:
    return chat_service(Path(tempfile.mkdtemp(prefix="chatops-bench-")), **env)


def summary(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
            f"(n={len(ordered)})")


def telegram(n: int) -> None:
    from bot.telegram import TelegramPlatform

    fake = FakeTelegram("1:bench")
    svc = service(TELEGRAM_BOT_TOKEN="1:bench", TELEGRAM_API_URL=fake.url)
    platform = TelegramPlatform.create(svc)
    stop = threading.Event()
    handler = CommandHandler(svc.settings, svc.config, svc.queue)
    threading.Thread(target=platform.serve, args=(handler, stop), daemon=True).start()
    backend = Running(svc, platform)
    wait_until(lambda: fake.offsets)
    answers, reports = [], []
    for i in range(n):
        before, start = len(fake.sent()), time.time()
        fake.push(private_message("status", message_id=i + 1))
        answers.append(fake.wait_sent(before + 1)[-1].at - start)
    for i in range(n):
        before, start = len(fake.sent()), time.time()
        fake.push(private_message(f"example say hello n{i}", message_id=1000 + i))
        reports.append(fake.wait_sent(before + 1)[-1].at - start)
    print(f"telegram: message -> answer (status)    {summary(answers)}")
    print(f"telegram: command -> job report         {summary(reports)}")
    stop.set()
    backend.close()
    platform.close()
    fake.close()


def discord(n: int) -> None:
    from bot.discord import DiscordPlatform

    fake, signer = FakeDiscord(), Signer()
    svc = service(DISCORD_BOT_TOKEN="bench", DISCORD_APPLICATION_ID=APP_ID,
                  DISCORD_PUBLIC_KEY=signer.public_hex, DISCORD_API_URL=fake.url)
    handler = CommandHandler(svc.settings, svc.config, svc.queue)
    app = Flask("bench")
    platform = DiscordPlatform.create(svc)
    app.register_blueprint(platform.http_blueprint(handler))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    backend = Running(svc, platform)
    url = f"http://127.0.0.1:{server.server_port}/discord/interactions"

    def post(payload: dict) -> dict:
        body = json.dumps(payload).encode()
        request = urllib.request.Request(url, data=body, headers=signer.headers(body))
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    post(interaction("status", token="warm-up"))
    fake.wait_sent(1)
    deferred, edited, reported = [], [], []
    for i in range(n):
        hooks, posts = len(fake.sent("/webhooks/")), len(fake.sent("/channels/"))
        start = time.time()
        post(interaction("run", options={"command": f"example say hello n{i}"}, token=f"t{i}"))
        deferred.append(time.time() - start)
        edited.append(fake.wait_sent(hooks + 1, "/webhooks/")[-1].at - start)
        reported.append(fake.wait_sent(posts + 1, "/channels/")[-1].at - start)
    print(f"discord: interaction -> deferred reply  {summary(deferred)}")
    print(f"discord: interaction -> original edited {summary(edited)}")
    print(f"discord: interaction -> job report      {summary(reported)}")
    backend.close()
    server.shutdown()
    platform.close()
    fake.close()


if __name__ == "__main__":
    logging.disable(logging.WARNING)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    telegram(count)
    discord(count)
