"""Delivery of Slurm notifications under pressure: 429 storms, flaky and dead endpoints, the
per-user cap. Nothing is lost: every row ends delivered, dead-lettered or summarised."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from chatops import outbound
from chatops.notify.config import load_notify_config
from dispatcher.notify_ingest import NotifyIngest
from tests.support.notify import (
    SLACK_TOKEN,
    FakeChatApi,
    Senders,
    event,
    make_service,
    spool,
)
from tests.support.notify import drain as drain_senders
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # whole stacks and real processes: seconds per test

CHATOPS = str(Path(sys.executable).parent / "chatops")
CHANNELS = ["C1", "C2", "C3", "C4"]


@pytest.fixture
def setup(tmp_path: Path):
    api = FakeChatApi(per_target=0.05)
    service = make_service(tmp_path, SLACK_BOT_TOKEN=SLACK_TOKEN, SLACK_API_URL=f"{api.url}/api/")
    made: list[Senders] = []

    def ingest(**cfg) -> tuple[NotifyIngest, Any]:
        raw = {"slack": {"allowed_channels": CHANNELS + ["C_BAD", "C_GONE"]},
               "rate_limits": {"slack": {"per_target": 0.05, "per_second": 500}},
               "backoff_base": 0.05, "backoff_max": 0.5, **cfg}
        item = NotifyIngest(service.settings, service.config, service.queue, runner=None,
                            cfg=load_notify_config(raw))
        made.append(Senders(service, item.cfg))
        return item, made[-1]  # the ingest, and the Slack bot's sender

    yield api, service, ingest
    for senders in made:
        senders.close()
    api.close()


def queue_events(service, count: int, targets: list[str], user: str = "alice",
                 first_job: int = 100) -> None:
    for n in range(count):
        spool(service.settings.spool_dir, event(
            job_id=first_job + n, mail_user=",".join(f"slack:{t}" for t in targets),
            user=user))


def drain(made: tuple[NotifyIngest, Senders], timeout: float = 30) -> dict[str, int]:
    ingest, senders = made
    return drain_senders(ingest.engine, senders, timeout)


def job_ids(api: FakeChatApi, channel: str) -> list[int]:
    return [int(r.body["text"].split()[2]) for r in api.received("slack", channel)]


def test_a_429_storm_is_waited_out_with_retry_after(setup):
    api, service, make = setup
    ingest, senders = made = make()
    queue_events(service, 5, CHANNELS)
    assert ingest.scan() == 20
    api.storm_until, api.storm_retry_after = time.time() + 1.0, 0.5
    started = time.time()
    assert drain(made) == {"delivered": 20}
    assert time.time() - started >= 1.0
    assert api.violations == 0  # never faster than the per-target limit
    assert api.requests - 20 <= 4 * 3  # each target asked again only after its Retry-After
    for channel in CHANNELS:
        assert job_ids(api, channel) == [100, 101, 102, 103, 104]  # order kept per target


def test_a_half_failing_endpoint_loses_nothing(setup):
    api, service, make = setup
    api.fail_rate = 0.5
    ingest, senders = made = make(attempts=40)
    queue_events(service, 10, CHANNELS)
    ingest.scan()
    assert drain(made, 60) == {"delivered": 40}
    assert api.requests > 60  # about half failed and were retried
    for channel in CHANNELS:
        assert job_ids(api, channel) == list(range(100, 110))


def test_a_failing_target_holds_up_nobody_then_dead_letter_list_retry_drop(setup):
    api, service, make = setup
    api.broken.add("C_BAD")
    api.dead.add("C_GONE")
    ingest, senders = make(attempts=4, backoff_base=0.3, backoff_max=1.0)
    queue_events(service, 10, ["C_BAD", "C_GONE"] + CHANNELS[:3])
    assert ingest.scan() == 50
    stop = threading.Event()
    thread = threading.Thread(target=senders.run, args=(stop,))
    started = time.time()
    thread.start()
    try:
        wait_until(lambda: len(api.received("slack")) == 30, timeout=10,
                   what="healthy targets")
        healthy_done = time.time() - started
        wait_until(lambda: outbound.counts(ingest.engine).get("dead") == 20, timeout=30,
                   what="dead letters")
        # 10 messages a target at 0.05 s spacing, beside ~2 s of retries of C_BAD's first
        assert healthy_done < 1.5
        # C_GONE is refused for good at once; C_BAD after 4 attempts each
        assert outbound.counts(ingest.engine) == {"delivered": 30, "dead": 20}
        env = {**os.environ, "CHATOPS_HOME": str(service.settings.home),
               "CHATOPS_CONFIG": str(service.settings.config_path)}

        def cli(*args: str) -> str:
            done = subprocess.run([CHATOPS, "notifications", *args], env=env,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            return done.stdout

        listing = cli("list", "--state", "dead", "--limit", "100")
        assert listing.splitlines()[0].startswith("pending: 0  delivered: 30  dead: 20")
        gone = [line.split()[0] for line in listing.splitlines()[1:] if "slack:C_GONE" in line]
        assert len(gone) == 10 and "(chat.postMessage: Slack said channel_not_found)" in listing
        assert cli("drop", *gone) == "10 notification(s) dropped\n"
        api.broken.clear()
        assert cli("retry") == "10 notification(s) queued again\n"
        wait_until(lambda: len(api.received("slack", "C_BAD")) == 10, timeout=15,
                   what="the retried dead letters")
        wait_until(lambda: outbound.counts(ingest.engine).get("delivered") == 40, timeout=5)
    finally:
        stop.set()
        thread.join(10)
    assert job_ids(api, "C_BAD") == list(range(100, 110))
    assert outbound.counts(ingest.engine) == {"delivered": 40, "dropped": 10}


def test_the_per_user_cap_suppresses_then_says_how_many(setup):
    api, service, make = setup
    ingest, senders = made = make(user_cap={"count": 3, "window": 1.0})
    queue_events(service, 8, ["C1"])
    queue_events(service, 1, ["C2"], user="bob", first_job=200)
    assert ingest.scan() == 9
    assert drain(made) == {"delivered": 4, "suppressed": 5}
    assert job_ids(api, "C1") == [100, 101, 102]
    assert job_ids(api, "C2") == [200]
    time.sleep(1.1)  # the cap's window passes
    assert ingest.scan() == 1
    assert drain(made) == {"delivered": 5, "summarised": 5}
    last = api.received("slack", "C1")[-1].body["text"]
    assert last == ("5 further notifications about your Slurm jobs were suppressed "
                    "(more than 3 within 1 s).")


def test_429s_never_count_as_attempts_but_their_total_wait_is_bounded(setup):
    api, service, make = setup
    ingest, senders = made = make(attempts=2)
    queue_events(service, 2, ["C1"])
    assert ingest.scan() == 2
    api.storm_until, api.storm_retry_after = time.time() + 1.5, 0.2
    assert drain(made) == {"delivered": 2}  # some six 429s each, with an attempt limit of 2
    assert api.requests >= 2 + 5
    assert job_ids(api, "C1") == [100, 101]
    # Still throttled after max_wait in all: a dead letter that says so.
    ingest, senders = made = make(attempts=2, max_wait=0.6)
    queue_events(service, 1, ["C2"], first_job=300)
    assert ingest.scan() == 1
    api.storm_until = time.time() + 30
    assert drain(made) == {"delivered": 2, "dead": 1}
    (dead,) = outbound.listing(ingest.engine, "dead")
    assert (dead.channel, dead.attempts) == ("C2", 0)
    assert dead.last_error == "chat.postMessage: rate limited by Slack"


def test_two_senders_for_one_platform_never_send_a_message_twice(setup):
    api, service, make = setup
    ingest, first = make()
    second = Senders(service, ingest.cfg)  # another Slack bot on the same database
    queue_events(service, 10, CHANNELS)
    assert ingest.scan() == 40
    stop = threading.Event()
    threads = [threading.Thread(target=s.run, args=(stop,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: outbound.counts(ingest.engine).get("delivered") == 40, timeout=30,
                   what="every notification delivered")
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        second.close()
    for channel in CHANNELS:
        assert sorted(job_ids(api, channel)) == list(range(100, 110))  # each exactly once
