"""A fuzz corpus of malformed but correctly signed bodies against every inbound route (GitHub,
/slurm/events, Telegram, Slack, Discord), on the web app as ``chatops web`` builds it: every
one gets a 4xx that says why (or is taken, when the mutation still fits), never a 5xx.

The corpus: JSON nested 100 000 deep, bodies that are not JSON or not UTF-8, top-level values
that are not objects, and for each route a valid body with every field in turn replaced by a
value of each other JSON type (Discord's ``data``/``member``/``user`` as strings, GitHub objects
as lists, …), removed, or given a NUL character."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatops.cli import build_web_app
from tests.support.fake_discord import APP_ID, FakeDiscord, Signer, interaction
from tests.support.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.support.fake_telegram import FakeTelegram, private_message
from tests.support.slack import event_body, mention
from tests.support.slack import sign as slack_sign
from tests.support.web import hook_headers, web_service

pytestmark = pytest.mark.slow  # fake platform APIs and ~1 300 requests: seconds

TELEGRAM_TOKEN = "123456:telegram-token-for-fuzz"
EVENTS_TOKEN = "events-token-for-fuzz"
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
WRONG_VALUES: list[Any] = ["text", 7, 2.5, True, None, [], {}, ["x"], {"k": "v"}, "a\u0000b"]
GENERIC: list[tuple[str, bytes]] = [
    ("arrays nested 100 000 deep", DEEP_ARRAY),
    ("objects nested 100 000 deep", DEEP_OBJECT),
    ("not JSON", b"not json at all"), ("empty", b""), ("cut short", b'{"a": [1, 2'),
    ("not UTF-8", b'{"a": "\xff\xfe"}'), ("null", b"null"), ("a list", b"[]"),
    ("a list of objects", b'[{"type": 1}]'), ("a number", b"1"), ("a string", b'"x"'),
    ("huge number", b'{"update_id": 1' + b"0" * 5000 + b"}"),
]


def mutations(body: Any, path: tuple = ()) -> Iterator[tuple[str, Any]]:
    """The body with one field (at any depth) replaced by each wrong value, or removed."""
    children = (body.items() if isinstance(body, dict)
                else enumerate(body) if isinstance(body, list) else ())
    for key, value in children:
        here = (*path, key)
        for wrong in WRONG_VALUES:
            if wrong != value:
                yield f"{'.'.join(map(str, here))} = {json.dumps(wrong)}", _set(body, key, wrong)
        if isinstance(body, dict):
            yield f"{'.'.join(map(str, here))} removed", {k: v for k, v in body.items()
                                                          if k != key}
        for described, changed in mutations(value, here):
            yield described, _set(body, key, changed)


def _set(container: Any, key: Any, value: Any) -> Any:
    copied = copy.copy(container)
    copied[key] = value
    return copied


@pytest.fixture
def app(tmp_path: Path):
    slack = FakeSlack().__enter__()
    telegram, discord = FakeTelegram(TELEGRAM_TOKEN), FakeDiscord()
    signer = Signer()
    service = web_service(
        tmp_path / "home", CHATOPS_EVENTS_TOKEN=EVENTS_TOKEN,
        CHATOPS_SPOOL_DIR=str(tmp_path / "spool"),
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack.url,
        TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_URL=telegram.url,
        TELEGRAM_WEBHOOK_URL="https://chatops.example/telegram/fuzz-path-0123456789",
        TELEGRAM_WEBHOOK_SECRET="fuzz-secret",
        DISCORD_BOT_TOKEN="discord-token", DISCORD_APPLICATION_ID=APP_ID,
        DISCORD_PUBLIC_KEY=signer.public_hex, DISCORD_API_URL=discord.url)
    web = build_web_app(service)
    web.extensions["test.signer"] = signer
    yield web
    for fake in (telegram, discord):
        fake.close()
    slack.__exit__(None, None, None)


def post(client, route: str, body: bytes, signer: Signer, event: str = "push"):
    """POST ``body`` to ``route``, signed as that route's sender signs."""
    if route == "github":
        return client.post("/github/site/", data=body, headers=hook_headers(event, body))
    if route == "slurm":
        return client.post("/slurm/events", data=body, headers={
            "Authorization": f"Bearer {EVENTS_TOKEN}", "Content-Type": "application/json"})
    if route == "telegram":
        return client.post("/telegram/fuzz-path-0123456789", data=body, headers={
            "X-Telegram-Bot-Api-Secret-Token": "fuzz-secret", "Content-Type": "application/json"})
    if route == "slack":
        stamp = str(int(time.time()))
        return client.post("/slack/events", data=body, headers={
            "Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": slack_sign(body, stamp)})
    headers = signer.headers(body)
    return client.post("/discord/interactions", data=body,
                       headers={**headers, "Content-Type": "application/json"})


def valid_bodies() -> dict[str, list[tuple[str, Any]]]:
    push = {"ref": "refs/heads/master", "after": "abc123", "pusher": {"name": "bob"},
            "repository": {"full_name": "o/r", "default_branch": "master"},
            "sender": {"login": "bob"}, "head_commit": {"author": {"username": "bob"}}}
    merged = {"action": "closed", "number": 5, "sender": {"login": "bob"},
              "pull_request": {"merged": True, "number": 5, "base": {"ref": "master"},
                               "head": {"sha": "abc"}, "merge_commit_sha": "def",
                               "user": {"login": "bob"}},
              "repository": {"default_branch": "master"}}
    workflow = {"action": "completed", "workflow_run": {"id": 9, "conclusion": "success",
                                                        "head_branch": "master"}}
    event = {"version": 1, "id": "1700000000000000000-42-abcdef01",
             "argv": ["-s", "Slurm Job_id=5 Name=x Ended, COMPLETED, ExitCode 0", "nobody"],
             "subject": "Slurm Job_id=5 Name=x Ended, COMPLETED, ExitCode 0",
             "mail_user": "nobody", "env": {"SLURM_JOB_ID": "5"},
             "received_at": "2026-11-24T00:08:14.038585+00:00", "host": "h"}
    return {
        "github": [("push", push), ("pull_request", merged), ("workflow_run", workflow)],
        "slurm": [("event", event)],
        "telegram": [("message", {"update_id": 1, "message": private_message("status")})],
        "slack": [("event", json.loads(event_body(mention("<@UBOT> status"))))],
        "discord": [("command", interaction("status")),
                    ("run", interaction("run", options={"command": "help"}, guild=None))],
    }


def test_no_malformed_signed_body_gets_a_server_error(app) -> None:
    client = app.test_client()
    signer = app.extensions["test.signer"]
    server_errors: list[str] = []
    unexplained: list[str] = []
    sent = 0
    for route, bodies in valid_bodies().items():
        corpus = [(what, body) for what, body in GENERIC]
        for kind, valid in bodies:
            corpus += [(f"{kind}: {what}", json.dumps(body).encode())
                       for what, body in mutations(valid)]
        for what, body in corpus:
            event = what.split(":")[0] if route == "github" and ":" in what else "push"
            response = post(client, route, body, signer, event=event)
            sent += 1
            if response.status_code >= 500:
                server_errors.append(f"{route} {what}: {response.status_code}")
            elif response.status_code >= 400 and not response.get_data(as_text=True).strip():
                unexplained.append(f"{route} {what}: {response.status_code} without a reason")
    assert sent > 1200
    assert server_errors == []
    assert unexplained == []


@pytest.mark.parametrize(("route", "body", "status", "reason"), [
    ("github", DEEP_ARRAY, 400, {"outcome": "bad_request",
                                 "message": "The body is nested too deeply to be a real payload."}),
    ("github", b'{"pull_request": []}', 400, {
        "outcome": "bad_request", "message": "The payload does not have the expected shape: at "
        "pull_request, expected an object or null, not an array."}),
    ("slurm", DEEP_ARRAY, 400, {"error": "not a MailProg event: the body is nested too deeply "
                                          "to be a real payload"}),
    ("telegram", DEEP_ARRAY, 400, {"error": "the body is nested too deeply to be a real payload"}),
    ("telegram", b'{"update_id": 1, "message": {"message_id": 1, "date": 1, "chat": "42"}}', 400,
     {"error": "the update does not have the expected shape: at message.chat, expected an "
               "object, not a string"}),
    ("discord", json.dumps({**interaction("status"), "member": "alice"}).encode(), 400,
     {"error": "the interaction does not have the expected shape: at member, expected an "
               "object or null, not a string"}),
    ("discord", json.dumps({**interaction("status"), "data": "status"}).encode(), 400,
     {"error": "the interaction does not have the expected shape: at data, expected an "
               "object, not a string"}),
])
def test_what_is_wrong_is_said(app, route: str, body: bytes, status: int,
                               reason: dict[str, str]) -> None:
    response = post(app.test_client(), route, body, app.extensions["test.signer"],
                    event="pull_request")
    assert (response.status_code, response.json) == (status, reason)


def test_slack_says_what_is_wrong(app) -> None:
    signer = app.extensions["test.signer"]
    client = app.test_client()
    response = post(client, "slack", DEEP_OBJECT, signer)
    assert (response.status_code, response.text) == (
        400, "the body is nested too deeply to be a real payload\n")
    body = json.loads(event_body(mention("<@UBOT> status")))
    body["event"]["user"] = {"id": "U1"}
    response = post(client, "slack", json.dumps(body).encode(), signer)
    assert (response.status_code, response.text) == (
        400, "the event does not have the expected shape: at event.user, expected a string, "
             "not an object\n")




def test_a_github_field_with_a_nul_schedules_nothing(app) -> None:
    push = dict(valid_bodies()["github"][0][1], after="abc\u0000def")
    response = post(app.test_client(), "github", json.dumps(push).encode(),
                    app.extensions["test.signer"], event="push")
    assert (response.status_code, response.json["outcome"], response.json["message"]) == (
        422, "bad_args", "Nothing scheduled: [sha] has a NUL character, which no command line "
                         "can hold.")
