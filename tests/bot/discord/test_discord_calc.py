"""Calculations on Discord: `/run file:<attachment> command:…` (an HTTP interaction, signed),
the attachment fetched from its CDN address, run on the live test cluster, and the result files
posted to the channel (the real blueprint, discord.py's HTTP client against the stand-in)."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from bot.discord import DiscordPlatform
from chatops.commands import CommandHandler
from tests.support.fake_discord import APP_ID, FakeDiscord, Signer, interaction
from tests.support.remote import cluster_env, cluster_settings
from tests.support.serving import serve_in_thread
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # the test cluster, the web server, the dispatcher

INPUT = b"water\nH 0 0 0\nO 0 0 1\n"


@pytest.fixture
def site(make_service, run_backend, tmp_path: Path):
    fake = FakeDiscord()
    upload = f"{cluster_env()['CHATOPS_TEST_JOBS_DIR']}/dccalc-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "calc_configs.py"
    config.write_text(f"""
raw_config = {{}}
clusters = {{"test": {cluster_settings(cluster_env(), upload_path=upload)!r}}}
runners = {{"test": {{"shout": {{
    "program": "wc -l < {{}} > lines.txt; tr a-z A-Z < {{}} > upper.dat; echo {{args}}",
    "extensions": [".gjf"], "allowed_args": ["{{}}", "-v"],
    "slurm": {{"partition": "debug", "time": "5", "mem": "64M", "poll_seconds": 2}}}}}}}}
""")
    signer = Signer()
    service = make_service(DISCORD_BOT_TOKEN="discord-bot-token", DISCORD_APPLICATION_ID=APP_ID,
                           DISCORD_PUBLIC_KEY=signer.public_hex, DISCORD_API_URL=fake.url,
                           CHATOPS_CONFIG=str(config))
    handler = CommandHandler(service.settings, service.config, service.queue)
    app = Flask("test")
    platform = DiscordPlatform.create(service)
    app.register_blueprint(platform.http_blueprint(handler))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serve_in_thread(server)
    run_backend(service, platform)

    def post(payload: dict) -> int:
        body = json.dumps(payload).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.server_port}/discord/interactions", data=body,
            method="POST", headers=signer.headers(body))
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()  # (closing before the body is read can cost the deferred answer)
            return response.status

    yield fake, post
    server.shutdown()
    platform.close()
    fake.close()


def test_run_with_an_attachment_runs_it_and_posts_the_results(site) -> None:
    fake, post = site
    attached = fake.attach("555", "water.gjf", INPUT)
    payload = interaction("run", options={"command": "-v"})
    payload["data"]["options"].append({"name": "file", "type": 11, "value": "555"})
    payload["data"]["resolved"] = {"attachments": {"555": attached}}
    assert post(payload) == 200
    [answer] = fake.wait_sent(1, f"/webhooks/{APP_ID}/tok-1", timeout=30)
    job_id = int(re.match(r"Calculation (\d+):", answer.body["content"])[1])
    assert answer.body["content"].startswith(
        f"Calculation {job_id}: `water.gjf` is queued for runner `shout` on cluster test")
    def uploads() -> list:
        sent = [c for c in fake.sent("/channels/777/messages") if c.files]
        return sent if sum(len(c.files) for c in sent) >= 2 else []

    uploads = wait_until(uploads, 90, "the two result files")
    files = {name: data for c in uploads for name, data in c.files.values()}
    assert files == {"lines.txt": b"3\n", "upper.dat": INPUT.upper()}
    texts = [c.body.get("content", "") for c in fake.sent("/channels/777/messages")]
    assert any(t.startswith(f"Calculation {job_id} (`water.gjf`), runner `shout` on cluster "
                            "test: completed.") for t in texts), texts
