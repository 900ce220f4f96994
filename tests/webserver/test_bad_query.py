"""Huge numbers and NUL characters in addresses, queries and commands: 4xx answers that say
what was wrong, never a server error, on SQLite and on PostgreSQL (which refuses NUL in text and
whose driver, like SQLite's, cannot bind integers over 64 bits)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatops.events import Requester
from tests.support.web import web_service
from webserver.app import create_app

HUGE = "99999999999999999999999"
NUL_REFUSAL = "The request has a NUL character (%00) in its address or headers; remove it."


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def client(request: pytest.FixtureRequest, tmp_path: Path):
    env = {"CHATOPS_WEB_TOKEN": "tok-abcdef"}
    if request.param == "postgresql":
        env["CHATOPS_DATABASE_URL"] = request.getfixturevalue("pg_url")
    service = web_service(tmp_path / "home", **env)
    service.queue.enqueue("hello_hello", {"name": "x"}, Requester("web", "admin"), timeout=10)
    client = create_app(service).test_client()
    client.get("/login?token=tok-abcdef")
    yield client
    service.queue.engine.dispose()


def csrf_of(client) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get("/console").text)[1]


def test_a_huge_job_number_is_no_job(client) -> None:
    for path in (f"/jobs/{HUGE}", f"/jobs/{HUGE}/stdout", f"/jobs/{HUGE}/stderr"):
        page = client.get(path)
        assert page.status_code == 404, path
        assert f"There is no job {HUGE}." in page.text
    cancel = client.post(f"/jobs/{HUGE}/cancel", data={"csrf_token": csrf_of(client)})
    assert cancel.status_code == 404
    for text in (f"logs {HUGE}", f"cancel {HUGE}", f"logs #{HUGE} stderr"):
        reply = client.post("/console/send", json={"text": text},
                            headers={"X-CSRF-Token": csrf_of(client)})
        assert reply.status_code == 200
        assert reply.json["replies"][0]["text"] == (
            f"There is no job {HUGE}. `status` lists the current jobs.")


def test_nul_characters_are_refused(client) -> None:
    for path in ("/jobs?state=running%00", "/jobs?namespace=hello%00", "/jobs?user=web%00x",
                 "/jobs?state%00=running", "/schedules?message=a%00"):
        page = client.get(path, headers={"Accept": "application/json"})
        assert (page.status_code, page.json) == (400, {"error": NUL_REFUSAL}), path
    reply = client.post("/console/send", json={"text": "hello hello x\u0000y"},
                        headers={"X-CSRF-Token": csrf_of(client)})
    assert reply.json["replies"][0]["text"] == (
        "That text contains a NUL character (\\0), which no command accepts; type it again "
        "without it.")
    assert reply.json["job_id"] is None


def test_an_unknown_state_filter_is_named(client) -> None:
    page = client.get("/jobs?state=runing", headers={"Accept": "application/json"})
    assert page.status_code == 400
    assert page.json == {"error": "There is no job state 'runing'; the states are queued, "
                                  "running, succeeded, failed, cancelled, timed_out, lost."}
    assert client.get("/jobs?state=queued").status_code == 200
    assert "hello_hello" in client.get("/jobs?state=queued&namespace=hello").text


def test_the_console_says_what_is_wrong_with_a_body(client) -> None:
    headers = {"X-CSRF-Token": csrf_of(client), "Content-Type": "application/json"}
    for body, error in (
            (b"[" * 100_000 + b"]" * 100_000,
             "The body is nested too deeply to be a real payload."),
            (b'["help"]', "The request does not have the expected shape: at the top, expected an "
                          "object, not an array."),
            (b'{"text": ["help"]}', "The request does not have the expected shape: at text, "
                                    "expected a string, not an array.")):
        answer = client.post("/console/send", data=body, headers=headers)
        assert (answer.status_code, answer.json) == (400, {"error": error})
