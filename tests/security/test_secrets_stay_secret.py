"""Every secret set to a distinctive value, `chatops run` at DEBUG with Slack, Telegram (webhook),
Discord, GitHub webhooks, Slurm event intake, SMTP and the dashboard configured against local
stand-ins, a busy scenario (jobs, reports, failed deliveries, refused requests, logins), then a
grep of all logs, the whole database and every dashboard page for each secret: nothing."""

from __future__ import annotations

import hashlib
import hmac
import http.cookiejar
import json
import re
import signal
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, select

from tests.support.cli import CHATOPS
from tests.support.fake_discord import APP_ID, FakeDiscord, Signer, interaction
from tests.support.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.support.fake_telegram import FakeTelegram, private_message
from tests.support.notify import MailSink, event, free_port
from tests.support.slack import event_body, mention, sign
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # the whole service as processes

CONFIG = textwrap.dedent('''
    admins = ["console:ops"]
    admin_channel = "console:admins"
    notifications = {"mailto": {"allowed_domains": ["example.org"]}, "stats_wait": 0}
    raw_config = {
        "example": {
            "description": "jobs of the scenario",
            "default_channel": "#chatops",
            "jobs": {
                "hello": {"run_args_template": "echo Hello {name}", "report_stdout": True},
                "env": {"run_args_template": "env | sort", "report_stdout": True},
                "fail": {"run_args_template": "echo oops >&2; exit 3"},
                "file": {"run_args_template": "env", "report_format": "file"},
            },
            "slack": [
                {"command": "say hello [name]", "help": "hi", "action": "schedule_job",
                 "job_type": "hello"},
                {"command": "env", "help": "env", "action": "schedule_job", "job_type": "env"},
                {"command": "fail", "help": "fails", "action": "schedule_job",
                 "job_type": "fail"},
                {"command": "file", "help": "a file", "action": "schedule_job",
                 "job_type": "file"},
            ],
        },
    }
''')


def distinctive(name: str) -> str:
    return f"{name.lower().replace('_', '')}{uuid.uuid4().hex[:12]}"


class Web:
    """A browser of the dashboard: cookies, CSRF, every page kept for the grep."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.pages: dict[str, str] = {}

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        request = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with self.opener.open(request, timeout=15) as response:
                status, text = response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode("utf-8", "replace")
        except urllib.error.URLError:  # not listening yet
            return 0, ""
        self.pages[path] = text
        return status, text

    def post(self, path: str, data: bytes, headers: dict[str, str]) -> tuple[int, str]:
        request = urllib.request.Request(self.base + path, data=data, headers=headers,
                                         method="POST")
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")


def test_no_secret_reaches_a_log_the_database_or_a_page(tmp_path: Path, pg_url: str) -> None:
    secrets = {name: distinctive(name) for name in (
        "GITHUB_WEBHOOK_SECRET", "CHATOPS_EVENTS_TOKEN", "CHATOPS_WEB_TOKEN",
        "CHATOPS_WEB_SECRET_KEY", "CHATOPS_METRICS_TOKEN", "CHATOPS_SMTP_PASSWORD",
        "DISCORD_BOT_TOKEN", "MATRIX_ACCESS_TOKEN", "CHATOPS_TEAMS_WEBHOOK_URL_TOKEN")}
    telegram_token = f"7001:{distinctive('telegram')}"
    hook_path = distinctive("hookpath")
    db_password = distinctive("dbpassword")
    dav_password = distinctive("davpassword")
    derived = hmac.new(telegram_token.encode(), b"chatops telegram webhook",
                       hashlib.sha256).hexdigest()  # the webhook's secret token
    slack, telegram, discord, signer = FakeSlack(), FakeTelegram(telegram_token), FakeDiscord(), \
        Signer()
    slack.__enter__()
    mail = MailSink("chatops", secrets["CHATOPS_SMTP_PASSWORD"])
    (tmp_path / "job_configs.py").write_text(CONFIG)
    (tmp_path / "workspace" / "example").mkdir(parents=True)
    port = free_port()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
        "CHATOPS_HOME": str(tmp_path / "home"), "CHATOPS_CONFIG": str(tmp_path / "job_configs.py"),
        "CHATOPS_WORKSPACE_DIR": str(tmp_path / "workspace"), "CHATOPS_LOG_LEVEL": "DEBUG",
        "CHATOPS_POLL_INTERVAL": "0.2", "CHATOPS_DELIVERY_ATTEMPTS": "1",
        "CHATOPS_DATABASE_URL": pg_url.replace("://root@", f"://root:{db_password}@"),
        "CHATOPS_RESULTS_WEBDAV_URL": f"https://chatops:{dav_password}@dav.example/results",
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.url,
        "TELEGRAM_BOT_TOKEN": telegram_token, "TELEGRAM_API_URL": telegram.url,
        "TELEGRAM_WEBHOOK_URL": f"https://chatops.example.org/telegram/{hook_path}",
        "DISCORD_APPLICATION_ID": APP_ID, "DISCORD_PUBLIC_KEY": signer.public_hex,
        "DISCORD_API_URL": discord.url, "DISCORD_BOT_TOKEN": secrets["DISCORD_BOT_TOKEN"],
        "CHATOPS_SMTP_HOST": "127.0.0.1", "CHATOPS_SMTP_PORT": str(mail.port),
        "CHATOPS_SMTP_USER": "chatops",
        "CHATOPS_TEAMS_WEBHOOK_URL": "https://teams.example.org/webhookb2/"
                                     + secrets["CHATOPS_TEAMS_WEBHOOK_URL_TOKEN"],
        **{k: v for k, v in secrets.items() if k != "CHATOPS_TEAMS_WEBHOOK_URL_TOKEN"},
    }
    every_secret = {**secrets, "TELEGRAM_BOT_TOKEN": telegram_token, "webhook path": hook_path,
                    "webhook secret token": derived, "database password": db_password,
                    "WebDAV password": dav_password,
                    "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    subprocess.run([CHATOPS, "db", "upgrade"], env=env, check=True, capture_output=True)
    out, err = tmp_path / "run.out", tmp_path / "run.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen([CHATOPS, "run", "--port", str(port)], env=env,
                                   stdout=stdout, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    web = Web(base)
    side_output = []
    try:
        wait_until(lambda: web.get("/healthz")[0] == 200, timeout=60, what="chatops run")
        wait_until(lambda: telegram.sent("setWebhook"), what="the Telegram webhook")

        # Slack: a signed command, a forged one, a report that cannot be delivered.
        def slack_event(text: str, channel: str = "C1", secret: str = SIGNING_SECRET) -> int:
            body = event_body(mention(text, channel=channel))
            stamp = str(int(time.time()))
            return web.post("/slack/events", body, {
                "Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": sign(body, stamp, secret)})[0]

        assert slack_event("<@UBOT> example say hello Bob") == 200
        slack.wait_until(lambda calls: any(c.params.get("text") == "Hello Bob" for c in calls))
        assert slack_event("<@UBOT> example env", secret="forged") == 401
        slack.fail("chat.postMessage", error="channel_not_found", times=1,
                   when=lambda p: p.get("channel") == "CGONE")
        assert slack_event("<@UBOT> example fail", channel="CGONE") == 200

        # Telegram by webhook: the right secret, a wrong one, a refused delivery.
        def telegram_update(text: str, token: str = derived, update_id: int = 1) -> int:
            body = json.dumps({"update_id": update_id, "message": private_message(text)})
            return web.post(f"/telegram/{hook_path}", body.encode(), {
                "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": token})[0]

        assert telegram_update("example env") == 200
        env_report = telegram.wait_sent(1)[0].params["text"]
        assert "PATH=" in env_report
        assert telegram_update("example env", token="wrong", update_id=2) == 401
        telegram.fail_next("sendMessage", status=400, description="Bad Request: chat not found")
        assert telegram_update("example say hello Tel", update_id=3) == 200

        # Discord: a signed failing job; an unsigned request.
        body = json.dumps(interaction("run", options={"command": "example fail"})).encode()
        assert web.post("/discord/interactions", body, signer.headers(body))[0] == 200
        discord.wait_sent(2)
        assert web.post("/discord/interactions", body, {"Content-Type": "application/json"}
                        )[0] == 401

        # GitHub: a signed ping, a forged one.
        ping = json.dumps({"zen": "Keep it logically awesome."}).encode()
        signature = "sha256=" + hmac.new(secrets["GITHUB_WEBHOOK_SECRET"].encode(), ping,
                                         hashlib.sha256).hexdigest()
        hook = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": str(uuid.uuid4()),
                "Content-Type": "application/json"}
        assert web.post("/github/example/", ping, {**hook, "X-Hub-Signature-256": signature}
                        )[0] == 200
        assert web.post("/github/example/", ping, {**hook, "X-Hub-Signature-256": "sha256=0"}
                        )[0] == 401

        # A Slurm event over HTTP becomes an e-mail through the SMTP login.
        slurm = json.dumps(event(mail_user="mailto:ops@example.org")).encode()
        bearer = {"Authorization": f"Bearer {secrets['CHATOPS_EVENTS_TOKEN']}",
                  "Content-Type": "application/json"}
        assert web.post("/slurm/events", slurm, bearer)[0] in (200, 202)
        assert web.post("/slurm/events", slurm, {"Authorization": "Bearer nope"})[0] == 401
        wait_until(lambda: mail.messages, timeout=30, what="the notification e-mail")

        # The dashboard: wrong logins, the right one, the console, every page.
        assert web.get("/login?token=wrong-token")[0] == 401
        assert web.get(f"/login?token={secrets['CHATOPS_WEB_TOKEN']}")[0] == 200
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', web.get("/console")[1])[1]
        status, sent = web.post("/console/send", json.dumps({"text": "example file"}).encode(),
                                {"Content-Type": "application/json", "X-CSRF-Token": csrf})
        assert status == 200, sent
        wait_until(lambda: json.loads(web.get("/console/poll")[1])["messages"], timeout=30,
                   what="the console report")
        side_output.append(subprocess.run([CHATOPS, "chat", "example say hello Cli", "--user",
                                           "ops"], env=env, capture_output=True, text=True,
                                          timeout=60))
        wait_until(lambda: all(j.state not in ("queued", "running") for j in _jobs(env)),
                   timeout=30, what="every job to end")
        wait_until(lambda: _failed_deliveries(env) >= 2, timeout=30,
                   what="the two refused deliveries")
        for path in ("/", "/jobs", "/console", "/console/poll", "/login", "/healthz",
                     "/no-such-page", "/jobs/9999"):
            web.get(path)
        web.get("/metrics", {"Authorization": f"Bearer {secrets['CHATOPS_METRICS_TOKEN']}"})
        for job in _jobs(env):
            for suffix in ("", "/stdout", "/stderr"):
                web.get(f"/jobs/{job.id}{suffix}")
        for args in (("jobs", "list"), ("jobs", "show", "1"), ("config", "check")):
            side_output.append(subprocess.run([CHATOPS, *args], env=env, capture_output=True,
                                              text=True, timeout=60))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        for fake in (telegram, discord):
            fake.close()
        slack.__exit__(None, None, None)
        mail.close()

    logs = out.read_text(errors="replace") + err.read_text(errors="replace") + "".join(
        r.stdout + r.stderr for r in side_output)
    assert " DEBUG " in logs and "setWebhook" in logs  # the scenario was logged in full
    assert len(web.pages) > 20
    database = _dump(env)
    assert "Hello Bob" in database and "channel_not_found" in database
    places = {"the logs": logs, "the database": database,
              **{f"page {path}": text for path, text in web.pages.items()}}
    leaks = [f"{name} in {where}" for name, value in every_secret.items()
             for where, text in places.items() if value in text]
    assert leaks == []


def _engine(env: dict[str, str]):
    return create_engine(env["CHATOPS_DATABASE_URL"].replace("postgresql://",
                                                             "postgresql+psycopg://"))


def _jobs(env: dict[str, str]) -> list:
    engine = _engine(env)
    try:
        with engine.connect() as conn:
            return list(conn.exec_driver_sql("SELECT id, state FROM jobs ORDER BY id"))
    finally:
        engine.dispose()


def _failed_deliveries(env: dict[str, str]) -> int:
    engine = _engine(env)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT count(*) FROM deliveries WHERE state = 'dead'").scalar()
    finally:
        engine.dispose()


def _dump(env: dict[str, str]) -> str:
    """Every row of every table, as text."""
    engine = _engine(env)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            return "\n".join(repr(tuple(row)) for table in metadata.sorted_tables
                             for row in conn.execute(select(table)))
    finally:
        engine.dispose()
