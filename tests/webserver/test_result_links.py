"""Download links to calculations' result files, through the real web server with no login: the
exact bytes while the link works, a clear refusal for a changed link (403), an ended one or one
whose files retention removed (410), and retention keeping the files while a link works."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from chatops.calc import links, store
from chatops.calc.files import results_dir
from chatops.calc.submit import Attachment, Submitter
from chatops.commands import CommandHandler, Incoming
from chatops.events import Requester
from chatops.prune import prune
from chatops.report import Report
from chatops.settings import SetupError, load_settings
from tests.support.wait import wait_until
from tests.support.web import LiveWeb, web_service

CONFIG = '''
raw_config = {}
clusters = {"hpc": {"host": "login.example.org", "user": "chatops", "key_file": "/k",
                    "known_hosts": "/kh"}}
runners = {"hpc": {"shout": {"program": "shout", "extensions": [".gjf"]}}}
'''
ALICE = Requester(platform="telegram", user="42", channel="42", user_name="alice",
                  is_direct=True, is_guest=False)
DATA = bytes(range(256)) * 40  # not text: the bytes must come back exactly


@pytest.fixture
def site(tmp_path: Path):
    """A calculation that ended with one result file, and the web server (no dispatcher)."""
    config = tmp_path / "job_configs.py"
    config.write_text(CONFIG)
    home = tmp_path / "home"
    service = web_service(home, config=config, CHATOPS_WEB_PUBLIC_URL="https://chat.example/")
    Submitter(service.settings, service.config, service.queue).submit(
        ALICE, [], Attachment("w.gjf", 2, lambda: b"x\n"))
    folder = results_dir(service.settings, 1)
    folder.mkdir(parents=True)
    (folder / "big.chk").write_bytes(DATA)
    service.queue.claim("test-worker")
    service.queue.finish(1, "succeeded", summary="completed", payload=Report(
        job_id=1, job_type="run_hpc.shout", namespace="run", outcome="succeeded").to_payload())
    store.record_end(service.queue.engine, 1, "/remote/1", {"files": ["big.chk"]})
    web = LiveWeb(service, dispatcher=False)
    yield service, web, config, home
    web.close()
    service.queue.engine.dispose()


def local(url: str, web: LiveWeb) -> str:
    """The link as the web server behind the site's proxy gets it."""
    return url.replace("https://chat.example", web.url)


def test_a_link_downloads_the_exact_bytes_without_login(site) -> None:
    service, web, _, _ = site
    made = time.time()
    [linked] = links.attach(service.settings, service.queue.engine, 1,
                            [{"path": "x", "name": "big.chk"}])
    assert linked["url"].startswith("https://chat.example/results/")
    assert linked["url"].endswith("/big.chk")
    assert made + 7 * 86400 <= linked["until"] <= time.time() + 7 * 86400
    answer = httpx.get(local(linked["url"], web))
    assert (answer.status_code, answer.content) == (200, DATA)
    assert answer.headers["Content-Disposition"] == "attachment; filename=big.chk"
    assert "Set-Cookie" not in answer.headers  # no session was needed or made


def test_a_changed_link_is_refused(site) -> None:
    service, web, _, _ = site
    [linked] = links.attach(service.settings, service.queue.engine, 1,
                            [{"path": "x", "name": "big.chk"}])
    url = local(linked["url"], web)
    token = url.split("/")[-2]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for changed in (url.replace(token, forged), url.replace("/big.chk", "/other.chk"),
                    url.replace(token, token[:20])):
        answer = httpx.get(changed)
        assert (answer.status_code, answer.text) == (403, (
            "This download link is not valid: it was changed or cut short. Open the whole "
            "link from the chat message, or send `calc <id>` to the bot for a new one.\n"))


def test_an_ended_link_is_gone_and_says_so(site) -> None:
    service, web, config, home = site
    [linked] = links.attach(service.settings, service.queue.engine, 1,
                            [{"path": "x", "name": "big.chk"}])
    # the same site with links that work one second: the link above ends at once
    short = LiveWeb(web_service(home, config=config, CHATOPS_RESULTS_LINK_LIFETIME="1s"),
                    dispatcher=False)
    try:
        answer = wait_until(lambda: (r := httpx.get(short.url + linked["url"].removeprefix(
            "https://chat.example"))).status_code == 410 and r, 10, "the link to end")
        assert answer.text.startswith("This download link expired on 20")
        assert answer.text.endswith(" UTC. Send `calc 1` to the bot for a new one (while the "
                                    "result files are kept).\n")
    finally:
        short.close()
        short.service.queue.engine.dispose()


def test_retention_keeps_files_a_link_needs_then_removes_them(site) -> None:
    service, web, _, _ = site
    [linked] = links.attach(service.settings, service.queue.engine, 1,
                            [{"path": "x", "name": "big.chk"}])
    folder = results_dir(service.settings, 1)
    later = time.time() + 86400  # the calculation ended a day before this
    done = prune(service.settings, service.queue, 3600, now=later)
    assert (done.kept, done.bytes, (folder / "big.chk").read_bytes()) == (1, 0, DATA)
    assert httpx.get(local(linked["url"], web)).status_code == 200
    done = prune(service.settings, service.queue, 3600, now=linked["until"] + 1)
    assert (done.kept, done.bytes, folder.exists()) == (0, len(DATA), False)
    answer = httpx.get(local(linked["url"], web))
    assert answer.status_code == 410
    assert answer.text.startswith("The result files of calculation 1 were removed on 20")
    assert answer.text.endswith(" UTC: they are kept only for a while.\n")


def test_without_a_public_url_no_link_is_made(site) -> None:
    service, _, config, home = site
    plain = web_service(home, config=config)
    files = [{"path": "x", "name": "big.chk", "url": "https://old/results/t/big.chk",
              "until": 1.0}]
    assert links.attach(plain.settings, plain.queue.engine, 1, files) == [
        {"path": "x", "name": "big.chk"}]
    plain.queue.engine.dispose()


def test_wrong_link_settings_stop_the_start() -> None:
    with pytest.raises(SetupError) as refused:
        load_settings({"CHATOPS_RESULTS_LINK_LIFETIME": "forever",
                       "CHATOPS_WEB_PUBLIC_URL": "chatops.example.org",
                       "CHATOPS_TELEGRAM_UPLOAD_LIMIT": "50MB"})
    assert str(refused.value) == (
        "settings with wrong values:\n"
        "  CHATOPS_TELEGRAM_UPLOAD_LIMIT must be a whole number, not '50MB'\n"
        "  CHATOPS_RESULTS_LINK_LIFETIME must be a length of time such as 7d, 36h or 3600, "
        "not 'forever'\n"
        "  CHATOPS_WEB_PUBLIC_URL must be the address people reach the web server at, such as "
        "https://chatops.example.org, not 'chatops.example.org'")


def test_calc_resends_the_report_with_new_links(site) -> None:
    service, web, _, _ = site
    service.queue.add_delivery("telegram", Report(
        job_id=1, job_type="run_hpc.shout", namespace="run", outcome="succeeded",
        files=[{"path": "p", "name": "big.chk", "url": "https://old/x/big.chk", "until": 1.0}],
    ).to_payload(), channel="42", job_id=1)
    service.queue.take_channel_deliveries("telegram", "42")
    answer = CommandHandler(service.settings, service.config, service.queue).handle(
        Incoming(ALICE, "calc 1"))
    assert answer.replies[0].text.endswith("Its report and result files follow.")
    [again] = service.queue.take_channel_deliveries("telegram", "42")
    [item] = Report.from_payload(json.loads(again.payload)).files
    assert item["until"] > time.time() + 7 * 86400 - 60
    assert httpx.get(local(item["url"], web)).content == DATA


def test_the_dispatcher_removes_old_results_itself_but_not_what_a_link_needs(
        tmp_path: Path) -> None:
    config = tmp_path / "job_configs.py"
    config.write_text(CONFIG + 'calculations = {"keep_results": "1h"}\n')
    service = web_service(tmp_path / "home", config=config,
                          CHATOPS_WEB_PUBLIC_URL="https://chat.example")
    submitter = Submitter(service.settings, service.config, service.queue)
    long_ago = time.time() - 7200
    for job_id in (1, 2):  # both ended two hours ago; the second was linked again since
        submitter.submit(ALICE, [], Attachment("w.gjf", 2, lambda: b"x\n"))
        results_dir(service.settings, job_id).mkdir(parents=True)
        (results_dir(service.settings, job_id) / "big.chk").write_bytes(DATA)
        service.queue.claim("test-worker", now=long_ago)
        service.queue.finish(job_id, "succeeded", summary="completed", now=long_ago)
    links.attach(service.settings, service.queue.engine, 2, [{"path": "x", "name": "big.chk"}])
    web = LiveWeb(service)  # with the real Dispatcher
    try:
        wait_until(lambda: not results_dir(service.settings, 1).exists(), 20,
                   "the dispatcher to remove calculation 1's results")
        answer = CommandHandler(service.settings, service.config, service.queue).handle(
            Incoming(ALICE, "calc 1")).replies[0].text
        assert answer.startswith("Calculation 1: `w.gjf` with runner `shout` on cluster hpc, ")
        assert answer.endswith(" UTC: they are kept here only for a while.")
        assert "Its result files were removed on " in answer
        assert (results_dir(service.settings, 2) / "big.chk").read_bytes() == DATA
    finally:
        web.close()
        service.queue.engine.dispose()
