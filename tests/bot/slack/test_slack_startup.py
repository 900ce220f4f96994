"""Start-up: `chatops bot slack` and `chatops run` check the tokens, and never log them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.runner import configured_platforms
from chatops.events import Requester
from chatops.report import Report
from tests.support.fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.support.slack import make_service, slack_env

pytestmark = pytest.mark.slow  # whole stacks and real processes: seconds per test

CHATOPS = str(Path(sys.executable).parent / "chatops")


def chatops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHATOPS, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("extra", "message"), [
    ({"SLACK_BOT_TOKEN": "", "SLACK_APP_TOKEN": APP_TOKEN}, "SLACK_BOT_TOKEN is not set"),
    ({"SLACK_BOT_TOKEN": "xoxb-wrong-token-000000"},
     "SLACK_BOT_TOKEN was refused by Slack (invalid_auth)"),
    ({"SLACK_APP_TOKEN": "xapp-wrong-token-000000"},
     "SLACK_APP_TOKEN was refused by Slack (invalid_auth)"),
    ({"SLACK_APP_TOKEN": "xoxb-not-an-app-token"},
     "SLACK_APP_TOKEN must be an app-level token starting with xapp-"),
    ({"SLACK_API_URL": "http://127.0.0.1:9/"}, "cannot reach the Slack Web API at "
                                               "http://127.0.0.1:9/ to check SLACK_BOT_TOKEN"),
])
@pytest.mark.parametrize("command", [("bot", "slack"), ("run", "--port", "0")])
def test_a_missing_or_bad_token_stops_start_up_naming_the_variable(
        tmp_path: Path, fake: FakeSlack, extra: dict[str, str], message: str,
        command: tuple[str, ...]) -> None:
    make_service(tmp_path, fake)
    env = slack_env(tmp_path, fake, **extra)
    result = chatops(env, *command)
    assert result.returncode == 3, result.stderr
    assert message in result.stderr
    for secret in (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, "wrong-token-000000"):
        assert secret not in result.stderr + result.stdout


def test_slack_counts_as_configured_when_any_of_its_variables_is_set(tmp_path: Path,
                                                                     fake: FakeSlack) -> None:
    assert "slack" in configured_platforms(make_service(tmp_path, fake).settings)
    bare = make_service(tmp_path / "bare", fake, SLACK_BOT_TOKEN="", SLACK_SIGNING_SECRET="")
    assert "slack" not in configured_platforms(bare.settings)


@pytest.mark.parametrize("command", [("bot", "slack"), ("run", "--port", "0")])
def test_reports_are_delivered_and_tokens_never_logged_even_at_debug(
        tmp_path: Path, fake: FakeSlack, command: tuple[str, ...]) -> None:
    service = make_service(tmp_path, fake)
    requester = Requester(platform="slack", user="U_MEMBER", channel="C1",
                          thread="1700000000.000100", message="1700000000.000100")
    service.queue.enqueue("example_hello", {"name": "Bob"}, requester, timeout=60)
    job_id = service.queue.history(1)[0].id
    if command[0] == "bot":  # no dispatcher in this process: end the job here
        report = Report(job_id=job_id, job_type="example_hello", namespace="example",
                        outcome="succeeded", text="Hello Bob")
        service.queue.finish(job_id, "succeeded", payload=report.to_payload())
    env = slack_env(tmp_path, fake, CHATOPS_LOG_LEVEL="DEBUG")
    log = open(tmp_path / "chatops.log", "wb")
    process = subprocess.Popen([CHATOPS, *command], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        fake.wait_count("chat.postMessage", 1, timeout=30)
        fake.wait_count("reactions.add", 1, timeout=10)
        time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        log.close()
    output = (tmp_path / "chatops.log").read_text()
    post = fake.of("chat.postMessage")[0]
    assert (post.params["channel"], post.params["thread_ts"], post.params["text"]) == (
        "C1", "1700000000.000100", "Hello Bob")
    assert "Slack: signed in as chatops (UBOT) in Test" in output
    assert "chat.postMessage" in output  # slack_sdk did log its requests at DEBUG …
    for secret in (BOT_TOKEN, SIGNING_SECRET):
        assert secret not in output  # … with the token redacted


def test_the_manifest_subscribes_to_what_the_app_handles() -> None:
    manifest = (Path(__file__).resolve().parents[3] / "docs/slack-manifest.yml").read_text()
    for needed in ("- app_mention\n", "- message.im\n", "- app_mentions:read", "- im:history",
                   "- chat:write ", "- reactions:write", "- files:write", "- files:read",
                   "- users:read", "- pins:write", "socket_mode_enabled: true"):
        assert needed in manifest


def test_chatops_run_receives_signed_events_over_http(tmp_path: Path, fake: FakeSlack) -> None:
    import re
    import urllib.request

    from tests.support.slack import event_body, mention, sign

    make_service(tmp_path, fake)
    log = open(tmp_path / "run.log", "wb")
    process = subprocess.Popen([CHATOPS, "run", "--port", "0"], env=slack_env(tmp_path, fake),
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 30
        while not (found := re.search(r"web: (http://127.0.0.1:\d+)/",
                                      (tmp_path / "run.log").read_text())):
            assert time.time() < deadline and process.poll() is None, (
                (tmp_path / "run.log").read_text())
            time.sleep(0.05)
        event = mention("<@UBOT> example say hello Bob")
        body, stamp = event_body(event), str(int(time.time()))
        request = urllib.request.Request(f"{found[1]}/slack/events", data=body, headers={
            "Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(body, stamp)})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        posts = fake.wait_count("chat.postMessage", 1, timeout=30)
        assert [(c.params["channel"], c.params["thread_ts"], c.params["text"])
                for c in posts] == [("C1", event["ts"], "Hello Bob")]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
