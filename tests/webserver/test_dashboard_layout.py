"""The dashboard reads like the chat and fits a phone: chat markup and Block Kit rendered as Slack
shows them, "stopped (SIGTERM)" for a cancelled job, cancel buttons on the queue page, a console
transcript that survives a reload, and no page wider than the screen at 390 px or 1280 px. A
real headless Chromium (Debian's) against the app and a real Dispatcher."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.wait import wait_until
from tests.support.web import REPO, LiveWeb, web_service
from tests.webserver.test_dashboard import SHOTS, TOKEN, browser, submit  # noqa: F401

pytestmark = pytest.mark.slow  # a browser and a dispatcher

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
LONG = "x" * 240  # one unbroken word, wider than any phone


@pytest.fixture
def web(tmp_path: Path):
    service = web_service(tmp_path / "home", config=REPO / "job_configs.py",
                          workspace=REPO / "workspace", CHATOPS_WEB_TOKEN=TOKEN)
    live = LiveWeb(service)
    yield live
    live.close()


def fits(page) -> tuple[int, int]:
    """(the page's width, the screen's) — the first must not exceed the second."""
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def assert_fits(page, what: str) -> None:
    wide, screen = fits(page)
    assert wide <= screen, f"{what} is {wide} px wide on a {screen} px screen"


def state_of(web: LiveWeb, job_id: int, *states: str) -> bool:
    return web.service.queue.get(job_id).state in states


def test_chat_markup_cancel_buttons_transcript_and_phone_widths(web: LiveWeb, browser):  # noqa: F811
    from playwright.sync_api import expect

    page = browser.new_page(viewport=PHONE)
    page.goto(web.url + "/login")
    assert_fits(page, "the login page")
    page.goto(f"{web.url}/login?token={TOKEN}")
    expect(page.locator("h1")).to_have_text("Queue")

    # The console renders what the chat would: code spans, fences, bold, Block Kit.
    page.goto(web.url + "/console")
    hello = submit(page, web, "example say hello *Bob*")
    expect(page.locator("#transcript .msg.bot .chat").last).to_have_text("Hello Bob",
                                                                         timeout=20_000)
    expect(page.locator("#transcript .msg.bot .chat strong").last).to_have_text("Bob")
    wait_until(lambda: state_of(web, hello, "succeeded"), what="the hello job")
    submit(page, web, "example show blocks Weekly report")
    expect(page.locator("#transcript .bk-header")).to_have_text("Weekly report",
                                                                timeout=20_000)
    expect(page.locator("#transcript .bk-section strong").first).not_to_be_empty()
    assert "\"type\"" not in page.locator("#transcript").inner_text()  # no JSON
    page.fill("#command", "help")
    page.press("#command", "Enter")
    expect(page.locator("#transcript .msg.bot code", has_text="example")).to_have_count(1)
    failed = submit(page, web, "example fail")
    expect(page.locator("#transcript .msg.error pre code").last).to_contain_text(
        "disk quota exceeded", timeout=20_000)
    page.fill("#command", "exmaple sya hello Bob")
    page.press("#command", "Enter")
    expect(page.locator("#transcript .msg.error .chat").last).to_have_text(
        "Sorry, I didn't understand exmaple sya hello Bob. Did you mean example say hello "
        "[name]? (help lists the commands.)")
    submit(page, web, f"example say hello {LONG}")
    expect(page.locator("#transcript .msg.bot .chat", has_text=LONG)).to_have_count(1,
                                                                                   timeout=20_000)
    assert_fits(page, "the console")
    page.screenshot(path=str(SHOTS / "console-phone.png"))

    # A reload keeps the transcript.
    before = page.locator("#transcript .msg").all_inner_texts()
    page.reload()
    expect(page.locator("#transcript .msg")).to_have_count(len(before))
    assert page.locator("#transcript .msg").all_inner_texts() == before
    expect(page.locator("#transcript .bk-header")).to_have_text("Weekly report")

    # The job pages: a failure's stderr fenced as code; blocks laid out; long words wrap.
    page.goto(f"{web.url}/jobs/{failed}")
    expect(page.locator(".chat.report pre code")).to_contain_text("disk quota exceeded")
    assert_fits(page, f"job {failed}'s page")
    for job in web.service.queue.history(20):
        page.goto(f"{web.url}/jobs/{job.id}")
        assert_fits(page, f"job {job.id}'s page")
    page.goto(web.url + "/jobs")
    assert_fits(page, "the history")
    page.set_viewport_size(DESKTOP)
    assert_fits(page, "the history on a desktop")
    page.set_viewport_size(PHONE)

    # The queue page: a running and a scheduled job, each with its button.
    page.goto(web.url + "/console")
    running = submit(page, web, "example sleep 120")
    wait_until(lambda: state_of(web, running, "running"), what="the sleep to start")
    later = submit(page, web, "example sleep later 7")
    page.goto(web.url + "/")
    expect(page.locator(f"tr:has(a[href='/jobs/{running}']) button")).to_have_text("Stop")
    expect(page.locator(f"tr:has(a[href='/jobs/{later}']) button")).to_have_text("Cancel")
    assert_fits(page, "the queue")
    page.screenshot(path=str(SHOTS / "queue-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    assert_fits(page, "the queue on a desktop")
    page.set_viewport_size(PHONE)

    page.click(f"tr:has(a[href='/jobs/{later}']) button")
    expect(page.locator("main")).to_contain_text(f"Cancelled job {later} (example_sleep) "
                                                 "before it started.")
    assert_fits(page, "the answer to a cancel")
    page.click("text=Back to the queue")
    page.click(f"tr:has(a[href='/jobs/{running}']) button")
    expect(page.locator("main")).to_contain_text(f"Stopping job {running} (example_sleep); "
                                                 "its report will follow.")
    wait_until(lambda: state_of(web, running, "cancelled"), what="the sleep to stop")
    page.goto(f"{web.url}/jobs/{running}")
    facts = page.locator("dl.facts").inner_text()
    assert "stopped (SIGTERM)" in facts
    assert "-15" not in facts
    assert state_of(web, later, "cancelled")
