"""A chat-submitted Slurm job's end event and its report are one message in the thread, in
whichever order they come (issue 13 item 8), on SQLite and PostgreSQL. The console reads its
thread the way `chatops chat` does (``take_waiting``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatops import migrate, outbound
from chatops.db import make_engine
from chatops.events import Requester
from chatops.job_end import tell_thread
from chatops.plain_text import render_delivery
from chatops.platform import take_waiting
from chatops.queue import Queue
from chatops.report import Report

WHO = Requester(platform="console", user="alice", channel="t1")
END = "Slurm job 77 ended: COMPLETED, exit code 0, run time 0:00:01."
BEGIN = "Slurm job 77 began."
REPORT_TEXT = ("`hpc_nap` (job {job_id}) completed.\nSlurm job 77 on cluster test: COMPLETED, "
               "exit code 0, elapsed 0:00:01.")


@pytest.fixture(params=["sqlite", "postgresql"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Queue]:
    url = (f"sqlite:///{tmp_path / 'chatops.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    engine = make_engine(url)
    migrate.upgrade(engine)
    yield Queue(engine)
    engine.dispose()


def running_job(queue: Queue) -> int:
    job_id = queue.enqueue("hpc_nap", {}, WHO, timeout=60).job_id
    assert [r.id for r in queue.claim_many("w1", 1)] == [job_id]
    return job_id


def finish(queue: Queue, job_id: int) -> None:
    report = Report(job_id, "hpc_nap", "hpc", "succeeded", text=REPORT_TEXT.format(job_id=job_id),
                    details={"summary": "completed", "slurm_job_id": 77})
    assert queue.finish(job_id, "succeeded", payload=report.to_payload()) == 1


def tell(queue: Queue, job_id: int, text: str, is_end: bool) -> bool:
    [sub] = queue.subscribers_of(job_id)
    return tell_thread(queue, job_id, sub, text, is_end)


def seen(queue: Queue) -> list[str]:
    return [render_delivery(d) for d in take_waiting(queue, "console", "t1")]


def test_an_end_notice_already_read_is_edited_into_the_report(queue: Queue) -> None:
    job_id = running_job(queue)
    assert tell(queue, job_id, BEGIN, False) and tell(queue, job_id, END, True)
    assert seen(queue) == [BEGIN, END]
    finish(queue, job_id)
    # The one end message now reads as the report (the console shows an edit as its newest
    # text); the report is not a message of its own.
    assert seen(queue) == [REPORT_TEXT.format(job_id=job_id)]
    assert sorted(outbound.counts(queue.engine).items()) == [("delivered", 2), ("dropped", 1)]


def test_an_end_notice_not_sent_yet_gives_way_to_the_report(queue: Queue) -> None:
    job_id = running_job(queue)
    assert tell(queue, job_id, BEGIN, False) and tell(queue, job_id, END, True)
    finish(queue, job_id)
    assert seen(queue) == [BEGIN, REPORT_TEXT.format(job_id=job_id)]


def test_after_the_report_the_end_and_late_notices_are_dropped(queue: Queue) -> None:
    job_id = running_job(queue)
    finish(queue, job_id)
    assert not tell(queue, job_id, END, True)
    assert not tell(queue, job_id, BEGIN, False)  # a begin after the end would mislead
    assert seen(queue) == [REPORT_TEXT.format(job_id=job_id)]


def test_an_end_event_racing_the_report_still_makes_one_message(queue: Queue) -> None:
    """The ingest and the dispatcher at the same moment, many times: each thread gets one
    end message, whoever wins."""
    for _ in range(20):
        job_id = running_job(queue)
        [sub] = queue.subscribers_of(job_id)
        other = threading.Thread(target=tell_thread, args=(queue, job_id, sub, END, True))
        other.start()
        finish(queue, job_id)
        other.join(10)
        # nobody read the thread meanwhile: an end notice queued first gave way
        assert seen(queue) == [REPORT_TEXT.format(job_id=job_id)], job_id
