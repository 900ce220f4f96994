"""The dashboard in a real headless Chromium (Debian's), against the app and a real Dispatcher.

Screenshots of every page are saved under docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.support.require import require
from tests.support.wait import wait_until
from tests.support.web import REPO, LiveWeb, web_service

pytestmark = pytest.mark.slow  # needs the test cluster, Synapse or a browser

TOKEN = "dashboard-test-token-1234"
CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _require_chromium() -> None:
    require(os.path.exists(CHROMIUM), "Debian's chromium", "scripts/test-setup.sh")


@pytest.fixture
def web(tmp_path: Path):
    service = web_service(tmp_path / "home", config=REPO / "job_configs.py",
                          workspace=REPO / "workspace", CHATOPS_WEB_TOKEN=TOKEN)
    live = LiveWeb(service)
    yield live
    live.close()


@pytest.fixture
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


def submit(page, web: LiveWeb, text: str) -> int:
    """Type ``text`` into the console; the id of the job it made."""
    before = {job.id for job in web.service.queue.history(100)}
    page.fill("#command", text)
    page.press("#command", "Enter")
    [job_id] = wait_until(lambda: [job.id for job in web.service.queue.history(100)
                                   if job.id not in before], 10, f"the job of {text!r}")
    return job_id


def test_dashboard_end_to_end(web: LiveWeb, browser):
    from playwright.sync_api import expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})

    # Without a session every page sends you to the login page; the console API says 401.
    for path in ("/", "/jobs", "/console", "/jobs/1", "/jobs/1/stdout"):
        page.goto(web.url + path)
        assert re.search(r"/login\?next=", page.url), path
    assert page.request.get(web.url + "/console/poll").status == 401
    assert page.request.post(web.url + "/console/send", data={"text": "help"}).status == 401

    page.goto(web.url + "/login")
    page.fill("input[name=token]", "wrong-token")
    page.click("button[type=submit]")
    expect(page.locator("p.error")).to_have_text("Those credentials are not right.")
    page.screenshot(path=str(SHOTS / "login.png"))

    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Queue")
    expect(page.locator("text=Nothing is running.")).to_be_visible()

    # The console: type as in Slack, see the reply from a real dispatcher run.
    page.click("text=Console")
    page.fill("#command", "example say hello Bob")
    page.press("#command", "Enter")
    expect(page.locator("#transcript .msg.bot .chat").last).to_have_text("Hello Bob",
                                                                        timeout=20_000)
    expect(page.locator("#jobs .state")).to_have_text("succeeded")
    page.fill("#command", "example show table")
    page.press("#command", "Enter")
    expect(page.locator("#transcript .msg.bot .chat").last).to_contain_text("filesystem",
                                                                          timeout=20_000)
    page.fill("#command", "frobnicate")
    page.press("#command", "Enter")
    expect(page.locator("#transcript .msg.error .chat").last).to_contain_text(
        "Sorry, I didn't understand frobnicate.")  # `frobnicate` shown as code, as in chat
    expect(page.locator("#transcript .msg.error .chat code").first).to_have_text("frobnicate")
    page.screenshot(path=str(SHOTS / "console.png"))

    # The job page: args, requester, exit code, report and stdout.
    first_job = web.service.queue.history(10)[-1]
    page.click(f"#jobs a[href='/jobs/{first_job.id}']")
    expect(page.locator("h1")).to_contain_text(f"Job {first_job.id} example_hello succeeded")
    facts = page.locator("dl.facts").inner_text()
    assert "name = Bob" in facts
    assert "web:admin" in facts
    assert re.search(r"Exit code\s+0", facts)
    expect(page.locator(".chat.report")).to_have_text("Hello Bob")
    expect(page.locator("#stdout pre.log")).to_have_text("Hello Bob")
    page.screenshot(path=str(SHOTS / "job.png"), full_page=True)
    page.click("#stdout a:has-text('open the whole file')")
    assert page.url.endswith(f"/jobs/{first_job.id}/stdout")
    assert page.locator("body").inner_text().strip() == "Hello Bob"

    # The history with filters.
    page.goto(web.url + "/jobs?namespace=example&state=succeeded&user=web%3Aadmin")
    rows = page.locator("table.jobs tbody tr")
    expect(rows).to_have_count(2)
    page.goto(web.url + "/jobs?state=failed")
    expect(page.locator("text=No jobs match.")).to_be_visible()
    page.goto(web.url + "/jobs")
    page.screenshot(path=str(SHOTS / "history.png"))

    # The queue page with something running and scheduled.
    page.goto(web.url + "/console")
    running = submit(page, web, "example sleep 30")
    scheduled = submit(page, web, "example sleep later 5")
    expect(page.locator(f"#jobs a[href='/jobs/{scheduled}'] ~ .state")).to_have_text("queued")
    expect(page.locator(f"#jobs a[href='/jobs/{running}'] ~ .state")).to_have_text(
        "running", timeout=10_000)
    now = time.time()
    web.service.queue.suppress("example_table", now, now + 3600, "console:web:admin")
    page.goto(web.url + "/")
    expect(page.locator("section.card").first).to_contain_text("example_sleep")
    expect(page.locator("section.card").nth(2)).to_contain_text("example_table")
    expect(page.locator("section.card").nth(1)).to_contain_text("example_sleep")
    page.screenshot(path=str(SHOTS / "queue.png"))

    # A POST without the session's CSRF token is refused, even with the session cookie.
    assert page.request.post(web.url + "/console/send", data={"text": "help"}).status == 400

    # Logging out ends the session.
    page.click("button:has-text('Log out')")
    page.goto(web.url + "/jobs")
    assert "/login" in page.url


def test_screenshots_are_pngs():
    """The committed screenshots exist and are PNG files (the test above refreshes them)."""
    if not shutil.which("chromium") and not SHOTS.exists():
        pytest.skip("no screenshots yet")
    for name in ("login", "queue", "console", "job", "history"):
        data = (SHOTS / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
