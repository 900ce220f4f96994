"""GitHub webhooks: signatures, every example payload of @octokit/webhooks-examples, redeliveries,
the predecessor's merged-PR deploy, suppressions, and the config rules behind them."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from chatops.config_loader import ConfigError, build_config
from chatops.db import deliveries, webhook_deliveries
from tests.support.web import EXAMPLES, hook_headers, load_examples, sign, web_service
from webserver.app import create_app
from webserver.auth import ensure_token
from webserver.github import signature_ok
from webserver.markup import text_html

VECTOR = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


@pytest.fixture
def service(tmp_path: Path):
    return web_service(tmp_path / "home")


@pytest.fixture
def client(service):
    return create_app(service).test_client()


def post(client, namespace: str, event: str, payload, delivery: str | None = None):
    body = json.dumps(payload).encode()
    return client.post(f"/github/{namespace}/", data=body,
                       headers=hook_headers(event, body, delivery))


def example(event: str, action: str | None = None) -> dict:
    for entry in load_examples():
        if entry["name"] == event:
            for payload in entry["examples"]:
                if action is None or payload.get("action") == action:
                    return copy.deepcopy(payload)
    raise LookupError(f"no example {event} {action}")


def merged_pr(base: str | None = None) -> dict:
    payload = example("pull_request", "closed")
    pr = payload["pull_request"]
    pr["merged"] = True  # the package has no merged example: GitHub sets these two
    pr["merge_commit_sha"] = "c0ffee" + "0" * 34
    if base is not None:
        pr["base"]["ref"] = base
    return payload


# -- signatures -------------------------------------------------------------------------------

def test_githubs_documented_signature_vector():
    assert sign(b"Hello, World!", "It's a Secret to Everybody") == VECTOR
    assert signature_ok("It's a Secret to Everybody", b"Hello, World!", VECTOR, None, False)
    assert not signature_ok("It's a Secret to Everybody", b"Hello, World?", VECTOR, None, False)


def test_bad_signatures_are_refused_before_anything_else(client, service):
    body = json.dumps(example("push")).encode()
    good = hook_headers("push", body)
    cases = {
        "tampered body": (body.replace(b"master", b"mastar"), good),
        "wrong secret": (body, hook_headers("push", body, secret="not-the-secret")),
        "missing signature": (body, {k: v for k, v in good.items()
                                     if k != "X-Hub-Signature-256"}),
        "empty signature": (body, {**good, "X-Hub-Signature-256": ""}),
        "sha1 where not allowed": (body, {**{k: v for k, v in good.items()
                                             if k != "X-Hub-Signature-256"},
                                          "X-Hub-Signature": sign(body, algorithm="sha1")}),
        "not even JSON": (b"\x00garbage", {**good, "Content-Type": "text/plain"}),
    }
    for name, (data, headers) in cases.items():
        response = client.post("/github/site/", data=data, headers=headers)
        assert response.status_code == 401, name
        assert response.json["outcome"] == "bad_signature", name
    # An unknown namespace is only revealed to a signed request.
    unsigned = client.post("/github/nope/", data=body, headers={"X-GitHub-Event": "push"})
    assert unsigned.status_code == 401
    assert client.post("/github/nope/", data=body, headers=good).status_code == 404
    with service.queue.engine.connect() as conn:
        assert conn.execute(select(webhook_deliveries)).all() == []
    assert service.queue.history() == []


def test_legacy_sha1_only_where_the_namespace_opts_in(client):
    payload = merged_pr()
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "sha1-1",
               "Content-Type": "application/json", "X-Hub-Signature": sign(body, algorithm="sha1")}
    assert client.post("/github/legacy/", data=body, headers=headers).status_code == 202
    wrong = {**headers, "X-Hub-Signature": sign(body, "other", algorithm="sha1")}
    assert client.post("/github/legacy/", data=body, headers=wrong).status_code == 401
    assert client.post("/github/site/", data=body, headers=headers).status_code == 401


def test_content_type_ping_and_missing_secret(client, service, tmp_path):
    body = b"payload=%7B%7D"
    headers = hook_headers("push", body)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = client.post("/github/site/", data=body, headers=headers)
    assert response.status_code == 415
    assert "application/json" in response.json["message"]
    ping = post(client, "site", "ping", example("ping"))
    assert ping.status_code == 200
    assert ping.json["outcome"] == "ping"
    assert ping.json["message"] == "pong: namespace 'site' has 4 GitHub rule(s)."
    off = create_app(web_service(tmp_path / "off", GITHUB_WEBHOOK_SECRET=""))
    response = post(off.test_client(), "site", "ping", example("ping"))
    assert response.status_code == 403
    assert "GITHUB_WEBHOOK_SECRET" in response.json["message"]


# -- every example payload ----------------------------------------------------------------------

def should_schedule(event: str, payload: dict) -> bool:
    """What tests/support/web_config.py's `site` rules ask for, written out plainly."""
    if event == "push":
        return payload["ref"] == "refs/heads/master"
    if event == "workflow_run":
        run = payload["workflow_run"]
        return payload["action"] == "completed" and run["conclusion"] == "success"
    if event == "release":
        return payload["action"] == "published"
    if event == "pull_request":
        pr = payload["pull_request"]
        return (payload["action"] == "closed" and pr["merged"]
                and pr["base"]["ref"] == payload["repository"]["default_branch"])
    return False


def test_every_example_payload(client, service):
    assert EXAMPLES.is_file(), "run scripts/test-setup.sh (npm @octokit/webhooks-examples)"
    entries = load_examples()
    assert len(entries) == 58
    assert sum(len(e["examples"]) for e in entries) == 329
    scheduled, statuses = [], {}
    for entry in entries:
        for index, payload in enumerate(entry["examples"]):
            response = post(client, "site", entry["name"], payload)
            statuses[(entry["name"], index)] = response.status_code
            assert response.status_code < 500, (entry["name"], index, response.data)
            if should_schedule(entry["name"], payload):
                assert response.status_code == 202, (entry["name"], index, response.json)
                assert response.json["outcome"] == "scheduled"
                scheduled.append((entry["name"], service.queue.get(response.json["job_id"])))
            elif entry["name"] == "ping":
                assert response.status_code == 200
            else:
                assert response.status_code == 200, (entry["name"], index, response.json)
                assert response.json["outcome"] == "ignored"
    assert sorted(name for name, _ in scheduled) == [
        "push", "push", "release", "release", "release", "workflow_run", "workflow_run"]
    jobs = service.queue.history(500)
    # Equal type and args join one pending job (the three releases of tag 0.0.1 are one).
    assert {j.id for _, j in scheduled} == {j.id for j in jobs}
    assert sorted((j.job_type, j.args) for j in jobs) == [
        ("site_build", json.dumps({"sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
                                   "who": "Codertocat"}, separators=(",", ":"))),
        ("site_release", '{"tag":"0.0.1"}'),
        ("site_test", '{"run":"289782451"}'),
    ]
    build = next(j for j in jobs if j.job_type == "site_build")
    assert build.platform == "console" and build.channel == "#site"
    with service.queue.engine.connect() as conn:
        rows = conn.execute(select(webhook_deliveries.c.outcome)).scalars().all()
    assert len(rows) == 329
    pings = next(len(e["examples"]) for e in entries if e["name"] == "ping")
    assert rows.count("scheduled") == 7 and rows.count("ping") == pings == 4
    assert rows.count("ignored") == 329 - 7 - 4


def test_redelivery_schedules_once(client, service):
    payload = example("push")
    payload["ref"] = "refs/heads/master"
    first = post(client, "site", "push", payload, delivery="d-1")
    again = post(client, "site", "push", payload, delivery="d-1")
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json["outcome"] == "duplicate"
    assert again.json["job_id"] == first.json["job_id"]
    assert len(service.queue.history()) == 1
    assert len(service.queue.subscribers_of(first.json["job_id"])) == 1


# -- the merged pull request ------------------------------------------------------------------

@pytest.mark.slow
def test_merged_pr_deploys_after_60_seconds_by_default(client, service):
    before = time.time()
    response = post(client, "legacy", "pull_request", merged_pr())
    assert response.status_code == 202, response.json
    job = service.queue.get(response.json["job_id"])
    assert job.job_type == "legacy_deploy"
    assert job.state == "queued"
    assert before + 60 <= job.start_after <= time.time() + 60
    assert json.loads(job.args) == {"sha": "c0ffee" + "0" * 34}
    assert (job.platform, job.channel) == ("console", "#deploys")
    assert job.requested_by == "github:" + merged_pr()["sender"]["login"]
    # Not merged, or merged elsewhere: nothing.
    closed = example("pull_request", "closed")
    assert post(client, "legacy", "pull_request", closed).json["outcome"] == "ignored"
    elsewhere = post(client, "legacy", "pull_request", merged_pr(base="feature"))
    assert elsewhere.json["outcome"] == "ignored"
    assert len(service.queue.history()) == 1


def test_merged_pr_rule_passes_fields_as_args(client, service):
    payload = merged_pr()
    response = post(client, "site", "pull_request", payload)
    job = service.queue.get(response.json["job_id"])
    assert job.job_type == "site_deploy"
    assert json.loads(job.args) == {"number": str(payload["pull_request"]["number"]),
                                    "sha": "c0ffee" + "0" * 34}
    assert 29 <= job.start_after - job.created_at <= 31


def test_suppressed_deploy_waits_and_the_channel_is_told(client, service):
    now = time.time()
    service.queue.suppress("legacy_deploy", now - 10, now + 3600, "console:alice")
    response = post(client, "legacy", "pull_request", merged_pr())
    assert response.status_code == 202
    job_id = response.json["job_id"]
    assert service.queue.get(job_id).state == "queued"
    assert response.json["jobs"][0]["suppressed_until"] == pytest.approx(now + 3600)
    with service.queue.engine.connect() as conn:
        notices = conn.execute(select(deliveries).where(deliveries.c.job_id == job_id)).all()
    assert len(notices) == 1
    assert (notices[0].platform, notices[0].channel) == ("console", "#deploys")
    text = json.loads(notices[0].payload)["text"]
    assert f"scheduled job {job_id} (`legacy_deploy`)" in text
    assert "is suppressed until" in text
    assert "`legacy cancel deploy suppression` lifts it now." in text
    # With no chat platform, the dashboard's queue page shows the channel's messages.
    token = ensure_token(service.settings, fresh=True)
    client.get(f"/login?token={token}")
    page = client.get("/").text
    assert '<td data-label="Channel">#deploys</td>' in page
    assert text_html(text) in page  # as the chat shows it: `code` spans
    assert "<code>legacy cancel deploy suppression</code>" in page


def test_missing_field_is_a_clear_422(client, service):
    payload = example("release", "published")
    del payload["release"]["tag_name"]
    response = post(client, "site", "release", payload)
    assert response.status_code == 422
    assert response.json["message"] == ("the job's arg 'tag' comes from 'release.tag_name', "
                                        "which this release delivery does not have.")
    assert service.queue.history() == []


# -- the rules in job_configs.py --------------------------------------------------------------

def test_github_rule_errors_name_the_culprit():
    raw = {"ns": {"jobs": {"deploy": {"run_args_template": "echo {sha}"}}, "slack": [],
                  "github": [
                      {"event": "push", "job_type": "deplo", "args": {"sha": "$sha"}},
                      {"event": "push", "job_type": "deploy", "args": {"sha": "$commit"}},
                      {"event": "push", "job_type": "deploy", "args": {}, "merged": True},
                      {"event": "Push!", "job_type": "deploy", "branch": "main"},
                  ]}}
    with pytest.raises(ConfigError) as caught:
        build_config(raw)
    errors = caught.value.errors
    assert ("namespace 'ns', github rule 1: 'job_type' 'deplo' is not a job of this "
            "namespace (deploy)") in errors
    assert any(e.startswith("namespace 'ns', github rule 2: arg 'sha': unknown shortcut "
                            "'$commit'") for e in errors)
    assert ("namespace 'ns', github rule 3: 'merged' is true or false, and only for the "
            "'pull_request' event") in errors
    assert ("namespace 'ns', github rule 3: args [] do not match the template fields ['sha'] "
            "of job 'deploy'") in errors
    assert any(e.startswith("namespace 'ns', github rule 4: unknown key 'branch'")
               for e in errors)
    assert ("namespace 'ns', github rule 4: 'event' must be a GitHub event name such as "
            "'push', not 'Push!'") in errors


def test_default_rule_only_with_a_deploy_job_and_no_github_key():
    def rules(raw_ns):
        return build_config({"ns": {"slack": [], **raw_ns}}).namespaces["ns"].github

    deploy = {"jobs": {"deploy": {"run_args_template": "./deploy.sh {sha} {branch}"}}}
    (rule,) = rules(deploy)
    assert (rule.event, rule.actions, rule.merged, rule.branches, rule.delay_seconds) == (
        "pull_request", ("closed",), True, ("$default",), 60.0)
    assert rule.args == {"branch": "$branch", "sha": "$sha"}
    assert rules({**deploy, "github": []}) == ()
    assert rules({"jobs": {"build": {"run_args_template": "make"}}}) == ()
    assert rules({"jobs": {"deploy": {"run_args_template": "./deploy.sh {target}"}}}) == ()


def test_webhooks_and_metrics_on_postgresql(tmp_path, pg_url):
    service = web_service(tmp_path / "home", CHATOPS_DATABASE_URL=pg_url,
                          CHATOPS_METRICS_PUBLIC="true")
    client = create_app(service).test_client()
    first = post(client, "legacy", "pull_request", merged_pr(), delivery="pg-1")
    again = post(client, "legacy", "pull_request", merged_pr(), delivery="pg-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json == {**again.json, "outcome": "duplicate", "job_id": first.json["job_id"]}
    assert len(service.queue.history()) == 1
    metrics = client.get("/metrics").text
    assert 'chatops_jobs{namespace="legacy",state="queued"} 1.0' in metrics
    assert 'chatops_github_deliveries_total{event="pull_request",outcome="scheduled"} 1.0' \
        in metrics
    assert client.get("/healthz").json["checks"]["database"] == "ok"
