"""/metrics and /healthz, logins and access rules, and `chatops run` serving the web (waitress)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatops.cli import build_web_app
from chatops.events import Requester
from tests.support.wait import wait_until
from tests.support.web import REPO, WEB_CONFIG, LiveWeb, hook_headers, web_service
from webserver.app import create_app

CHATOPS = str(Path(sys.executable).parent / "chatops")


def samples(text: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def logged_in(app, **login):
    client = app.test_client()
    page = client.get("/login")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"csrf_token": csrf, **login})
    return client, response


def csrf_of(client) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get("/console").text).group(1)


@pytest.mark.slow
def test_metrics_change_as_jobs_run(tmp_path):
    service = web_service(tmp_path / "home", CHATOPS_WEB_TOKEN="t0ken-for-metrics",
                          CHATOPS_METRICS_TOKEN="scrape-token-1")
    live = LiveWeb(service)
    try:
        def scrape() -> dict:
            request = urllib.request.Request(
                live.url + "/metrics", headers={"Authorization": "Bearer scrape-token-1"})
            with urllib.request.urlopen(request) as response:
                assert response.headers["Content-Type"].startswith("text/plain")
                return samples(response.read().decode())

        before = scrape()
        assert before[("chatops_queue_depth", ())] == 0
        assert before[("chatops_job_duration_seconds_count", ())] == 0
        assert ("chatops_jobs", (("namespace", "example"), ("state", "succeeded"))) not in before
        client = create_app(service).test_client()
        client.get("/login?token=t0ken-for-metrics")
        response = client.post("/console/send", json={"text": "example say hello Ada"},
                               headers={"X-CSRF-Token": csrf_of(client)})
        job_id = response.json["job_id"]
        wait_until(lambda: service.queue.get(job_id).state == "succeeded", what="the job")
        body = json.dumps({"ref": "refs/heads/elsewhere"}).encode()
        client.post("/github/site/", data=body, headers=hook_headers("push", body))
        after = scrape()
        assert after[("chatops_jobs", (("namespace", "example"), ("state", "succeeded")))] == 1
        assert after[("chatops_job_duration_seconds_count", ())] == 1
        assert after[("chatops_job_duration_seconds_bucket", (("le", "+Inf"),))] == 1
        assert 0 < after[("chatops_job_duration_seconds_sum", ())] < 5
        assert after[("chatops_github_deliveries_total",
                      (("event", "push"), ("outcome", "ignored")))] == 1
        assert 0 <= after[("chatops_dispatcher_heartbeat_age_seconds", ())] < 10
        # The report waits for the web session to read it: that is no delivery backlog.
        assert ("chatops_deliveries_pending", (("platform", "console"),)) not in after
        service.queue.add_delivery("telegram", {"kind": "notice", "text": "hi"}, channel="42")
        assert scrape()[("chatops_deliveries_pending", (("platform", "telegram"),))] == 1
        # Queued jobs show up as queue depth.
        service.queue.suppress("example_hello", time.time() - 1, time.time() + 60, "t")
        service.queue.enqueue("example_hello", {"name": "Z"},
                              Requester("console", "t", channel="c"), timeout=10)
        assert scrape()[("chatops_queue_depth", ())] == 1
    finally:
        live.close()


def test_webhook_request_counter_and_no_secrets(tmp_path):
    service = web_service(tmp_path / "home", CHATOPS_WEB_TOKEN="t0ken-not-in-metrics",
                          CHATOPS_METRICS_PUBLIC="true")
    client = create_app(service).test_client()
    body = b"{}"
    client.post("/github/site/", data=body, headers={**hook_headers("made_up", body),
                                                     "X-Hub-Signature-256": "sha256=00"})
    client.post("/github/site/", data=body, headers=hook_headers("ping", body))
    text = client.get("/metrics").text
    found = samples(text)
    assert found[("chatops_webhook_requests_total",
                  (("event", "-"), ("outcome", "bad_signature")))] == 1
    assert found[("chatops_webhook_requests_total", (("event", "ping"), ("outcome", "ping")))] == 1
    assert "t0ken-not-in-metrics" not in text and "webhook-secret" not in text


@pytest.mark.slow
def test_healthz_reports_database_and_dispatcher(tmp_path):
    service = web_service(tmp_path / "home")
    client = create_app(service).test_client()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "unhealthy", "checks": {
        "process": "ok", "database": "ok", "dispatcher": "none running"}}
    live = LiveWeb(service)
    try:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json["status"] == "ok"
    finally:
        live.close()
    assert client.get("/healthz").json["checks"]["dispatcher"] == "none running"


def test_password_login_csrf_and_throttle(tmp_path):
    service = web_service(tmp_path / "home", CHATOPS_WEB_USERNAME="ops",
                          CHATOPS_WEB_PASSWORD="correct horse")
    app = create_app(service)
    client = app.test_client()
    client.get("/login")
    no_csrf = client.post("/login", data={"username": "ops", "password": "correct horse"})
    assert no_csrf.status_code == 400
    client, response = logged_in(app, username="ops", password="correct horse")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "ops" in client.get("/").text
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.post("/console/send", json={"text": "help"}).status_code == 400
    ok = client.post("/console/send", json={"text": "help"},
                     headers={"X-CSRF-Token": csrf_of(client)})
    assert ok.status_code == 200 and ok.json["replies"][0]["text"].startswith("Namespaces")
    # No generated token when a login is configured: ?token= of an old file does nothing.
    (service.settings.home / "web-token").write_text("stale-token\n")
    assert app.test_client().get("/login?token=stale-token").status_code == 401
    for _ in range(10):  # the stale token above was the first of eleven failures
        _, response = logged_in(app, username="ops", password="wrong")
    assert response.status_code == 429  # wrong guesses are throttled …
    _, response = logged_in(app, username="ops", password="correct horse")
    assert response.status_code == 302  # … the right password is not


def test_an_old_login_link_says_the_token_changed(tmp_path):
    from webserver.auth import ensure_token

    service = web_service(tmp_path / "home")
    before_restart = ensure_token(service.settings, fresh=True)
    current = ensure_token(service.settings, fresh=True)  # what the next `chatops run` does
    client = create_app(service).test_client()
    old_link = client.get(f"/login?token={before_restart}")
    assert old_link.status_code == 401
    assert ('<p class="error">That token is not the current one: <code>chatops run</code> '
            "makes a new one each time it starts. Open the login link it printed at its last "
            "start, or use the token kept in $CHATOPS_HOME/web-token on the server.</p>"
            ) in old_link.text
    assert client.get(f"/login?token={current}").status_code == 302


def test_restricted_namespaces_stay_restricted_for_web_guests(tmp_path):
    def client_for(**env: str):
        service = web_service(tmp_path / f"home{len(env)}", CHATOPS_WEB_TOKEN="tok-abcdef",
                              **env)
        job = service.queue.enqueue("secret_hello", {"name": "x"},
                                    Requester("slack", "U1", channel="C1"), timeout=10)
        client = create_app(service).test_client()
        client.get("/login?token=tok-abcdef")
        return client, job.job_id

    guest, job_id = client_for(CHATOPS_WEB_GUEST="true")
    page = guest.get(f"/jobs/{job_id}")
    assert page.status_code == 403
    assert f"Job {job_id} is not yours" in page.text and "secret_hello" not in page.text
    assert guest.get(f"/jobs/{job_id}/stdout").status_code == 403
    assert "secret_hello" not in guest.get("/").text
    assert "secret_hello" not in guest.get("/jobs").text
    refused = guest.post("/console/send", json={"text": "secret hello Bob"},
                         headers={"X-CSRF-Token": csrf_of(guest)})
    assert refused.json["refused"] is True
    member, job_id = client_for()
    assert member.get(f"/jobs/{job_id}").status_code == 200
    assert "secret_hello" in member.get("/").text


@pytest.mark.slow
def test_chatops_run_serves_the_web_with_a_generated_token(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATOPS_")}
    env.update(CHATOPS_HOME=str(home), CHATOPS_CONFIG=str(WEB_CONFIG),
               CHATOPS_WORKSPACE_DIR=str(REPO / "workspace"))
    subprocess.run([CHATOPS, "db", "upgrade"], env=env, check=True, capture_output=True)
    log = open(tmp_path / "run.log", "w+")
    process = subprocess.Popen([CHATOPS, "run", "--port", "0"], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def login_line() -> str | None:
            log.seek(0)
            return re.search(r"web login \(token kept in (\S+)\): (http://127\.0\.0\.1:\d+)"
                             r"/login\?token=(\S+)", log.read())

        found = wait_until(login_line, what="chatops run to print its login URL")
        token_file, base, token = Path(found[1]), found[2], found[3]
        assert token_file == home / "web-token"
        assert token_file.read_text().strip() == token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((home / "web-secret-key").stat().st_mode) == 0o600

        def health() -> int | None:
            try:
                with urllib.request.urlopen(base + "/healthz") as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code if exc.code == 200 else None
        assert wait_until(health, what="/healthz") == 200
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(base + "/console/poll")
        assert refused.value.code == 401
        with opener.open(f"{base}/login?token={token}") as response:
            assert response.url == base + "/"
            assert "<h1>Queue</h1>" in response.read().decode()
        with urllib.request.urlopen(base + "/") as response:  # no cookie: the login page
            assert response.url.startswith(base + "/login")
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def test_configured_platforms_http_endpoints_are_registered(tmp_path):
    plain = create_app(web_service(tmp_path / "plain"))
    assert not [r for r in plain.url_map.iter_rules() if r.rule.startswith("/telegram/")]
    service = web_service(tmp_path / "home", TELEGRAM_BOT_TOKEN="123:abc")
    app = build_web_app(service)  # what `chatops web` serves: the configured platforms' too
    assert "/telegram/<path:secret_path>" in {r.rule for r in app.url_map.iter_rules()}
    # Its endpoint is the platform's own (no dashboard login in front of it).
    response = app.test_client().post("/telegram/not-the-path", json={"update_id": 1})
    assert response.status_code == 404


@pytest.mark.slow
def test_github_jobs_report_to_slack_when_slack_is_configured(tmp_path):
    from tests.support.fake_slack import BOT_TOKEN, FakeSlack
    from webserver.github import report_requester

    service = web_service(tmp_path / "a")
    with create_app(service).test_request_context():
        who = report_requester(service.config.namespaces["legacy"], "octocat")
        assert who.platform == "console"
    with FakeSlack() as fake:
        service = web_service(tmp_path / "b", SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=fake.url)
        with build_web_app(service).test_request_context():
            who = report_requester(service.config.namespaces["legacy"], "octocat")
    assert (who.platform, who.channel, who.user) == ("slack", "#deploys", "github:octocat")


def test_a_pruned_jobs_log_link_says_it_was_pruned(tmp_path):
    from sqlalchemy import update

    from chatops.db import jobs
    from chatops.prune import prune

    service = web_service(tmp_path / "home", CHATOPS_WEB_TOKEN="tok-abcdefghijklmnopqrstu")
    job_id = service.queue.enqueue("example_hello", {"name": "x"},
                                Requester("console", "alice", channel="c"), timeout=10).job_id
    ended = time.time() - 7200
    with service.queue.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(
            state="succeeded", started_at=ended, finished_at=ended, exit_code=0))
    prune(service.settings, service.queue, 3600)
    client, _ = logged_in(create_app(service), token="tok-abcdefghijklmnopqrstu")
    page = client.get(f"/jobs/{job_id}/stdout")
    assert page.status_code == 410
    assert re.search(rf"<p>The logs of job {job_id} were removed by <code>chatops prune</code> "
                     r"on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, with those of every job that ended "
                     r"before \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.</p>", page.text), page.text
    assert client.get("/jobs/999/stdout").status_code == 404
