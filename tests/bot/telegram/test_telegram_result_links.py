"""A calculation's result file larger than Telegram takes (a small CHATOPS_TELEGRAM_UPLOAD_LIMIT
here) comes as a signed download link the real web server serves without login, and the results
are copied to a real WebDAV server (wsgidav) whose account never shows (the real
python-telegram-bot against the stand-in Bot API, the real Dispatcher on the live test
cluster)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.bot.telegram.test_telegram_calc import INPUT, TOKEN, serve, to_chat
from tests.support.fake_telegram import FakeTelegram, private_message
from tests.support.wait import wait_until
from tests.support.web import LiveWeb
from tests.support.webdav import WebDAV

pytestmark = pytest.mark.slow  # the test cluster, PTB polling, the dispatcher, wsgidav

PUBLIC = "https://chat.example"  # where people reach the web server (a proxy in front of it)


@pytest.fixture
def dav(tmp_path: Path):
    server = WebDAV(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def site(make_service, run_backend, tmp_path: Path, dav: WebDAV):
    fake = FakeTelegram(TOKEN)
    running = serve(fake, make_service, run_backend, tmp_path,
                    CHATOPS_TELEGRAM_UPLOAD_LIMIT="4", CHATOPS_WEB_PUBLIC_URL=PUBLIC,
                    CHATOPS_RESULTS_WEBDAV_URL=dav.with_account("/results"))
    service = next(running)
    web = LiveWeb(service, dispatcher=False)
    yield service, fake, web
    web.close()
    next(running, None)  # the bot stops
    fake.close()


def test_a_result_over_the_upload_limit_comes_as_a_link_and_a_webdav_copy(
        site, dav: WebDAV, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    service, fake, web = site
    fake.push(private_message("", message_id=7, caption="run",
                              document=fake.add_file("DOC1", "water.gjf", INPUT)))
    report = wait_until(lambda: [c for c in to_chat(fake) if c.method == "sendMessage"
                                 and re.match(r"Calculation \d+ \(", c.params["text"])], 180,
                        "the report")[0].params["text"]
    job_id = int(re.match(r"Calculation (\d+) ", report)[1])
    folder = f"{dav.url}/results/telegram-42/{job_id}/"
    assert report.endswith("Result files: <code>lines.txt</code>, <code>upper.dat</code>.\n"
                           f"They are also in the site's WebDAV folder: {folder}")
    # lines.txt (2 bytes) is a document; upper.dat (22 bytes) is more than the 4 allowed
    note = wait_until(lambda: [c for c in to_chat(fake) if c.method == "sendMessage"
                               and "upper.dat" in c.params["text"]
                               and not c.params["text"].startswith("Calculation")], 30,
                      "the link to upper.dat")[0].params["text"]
    match = re.fullmatch(rf"The file <code>upper.dat</code> is {len(INPUT)} bytes, more than "
                         r"Telegram "
                         r"accepts \(4 bytes\): download it until (\S+ \S+ UTC) \(no login "
                         rf"needed\) from ({re.escape(PUBLIC)}/results/\S+/upper.dat)", note)
    assert match, note
    [document] = [c for c in to_chat(fake) if c.method == "sendDocument"]
    assert document.files["document"] == ("lines.txt", b"3\n")
    # the link, as the proxy hands it to the web server: the exact bytes, no login
    download = httpx.get(match[2].replace(PUBLIC, web.url))
    assert (download.status_code, download.content) == (200, INPUT.upper())
    changed = httpx.get(match[2].replace(PUBLIC, web.url).replace("/upper.dat", "/lines.txt"))
    assert changed.status_code == 403
    # the WebDAV copy: both files, exactly
    assert dav.get(f"/results/telegram-42/{job_id}/upper.dat").content == INPUT.upper()
    assert dav.get(f"/results/telegram-42/{job_id}/lines.txt").content == b"3\n"
    # the account's password is nowhere people or logs see
    said = "\n".join(str(c.params) for c in fake.sent())
    with service.queue.engine.connect() as conn:
        stored = "\n".join(str(value) for table in ("deliveries", "calculations", "audit", "jobs")
                           for row in conn.execute(text(f"SELECT * FROM {table}"))
                           for value in row)
    logs = Path(service.settings.logs_dir)
    written = "\n".join(p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file())
    for where, what in (("chat", said), ("database", stored), ("logs", caplog.text),
                        ("job logs", written)):
        assert dav.password not in what, where
    assert f"{dav.url}/results" in stored  # (the folder itself is said, without the account)
