"""Schedules fired by the dispatcher: the right instants (an injected clock across Oslo's
daylight-saving changes), suppressions, misfires, and the reports that say so."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from chatops import migrate, schedule_store
from chatops.config_loader import build_config
from chatops.events import Requester
from chatops.job_config import Config
from chatops.plain_text import render_delivery
from chatops.platform import Delivery
from chatops.queue import Queue
from chatops.report import Report
from chatops.schedule_tables import schedule_fires
from chatops.service import open_queue
from chatops.settings import load_settings
from dispatcher.schedules import Scheduler
from tests.support.cli import spine_env


def utc(*fields: int) -> float:
    return datetime(*fields, tzinfo=UTC).timestamp()


def config_with(*schedules: dict[str, Any]) -> Config:
    return build_config({"ops": {
        "default_channel": "console:ops",
        "jobs": {"report": {"run_args_template": "echo report {site}", "report_stdout": True},
                 "check": {"run_args_template": "echo checked", "report_stdout": True}},
        "schedules": list(schedules)}})


@pytest.fixture
def queue(tmp_path: Path) -> Queue:
    settings = load_settings(spine_env(tmp_path))
    queue = open_queue(settings, need_schema=False)
    migrate.upgrade(queue.engine)
    return queue


def scheduler(queue: Queue, config: Config, worker: str = "test:1") -> Scheduler:
    settings = load_settings(spine_env(Path(queue.engine.url.database).parent))
    return Scheduler(settings, config, queue, worker)


def fires(queue: Queue) -> list[Any]:
    with queue.engine.connect() as conn:
        return list(conn.execute(select(schedule_fires).order_by(schedule_fires.c.fire_at)))


def run_until(sched: Scheduler, end: float) -> None:
    """The dispatcher's part: sleep until ``next_due`` (the injected clock jumps there), step."""
    while (due := sched.next_due) is not None and due <= end:
        sched.step(due)


def oslo(ts: float) -> str:
    return sched_local(ts, "Europe/Oslo")


def sched_local(ts: float, zone: str) -> str:
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def test_a_cron_schedule_fires_at_the_right_instants_across_both_oslo_changes(
        queue: Queue) -> None:
    config = config_with({"name": "night", "job_type": "check", "cron": "30 2 * * *",
                          "timezone": "Europe/Oslo"})
    sched = scheduler(queue, config)
    sched.start(utc(2025, 3, 28, 12))
    run_until(sched, utc(2025, 4, 1, 12))
    restarted = scheduler(queue, config)  # stopped from April to October:
    restarted.start(utc(2025, 10, 24, 12))
    restarted.step(utc(2025, 10, 24, 12))  # the latest missed fire runs once, late
    run_until(restarted, utc(2025, 10, 28, 12))
    assert [oslo(f.fire_at) for f in fires(queue)] == [
        "2025-03-29 02:30 CET", "2025-03-30 03:00 CEST",  # 02:30 skipped: right after the jump
        "2025-03-31 02:30 CEST", "2025-04-01 02:30 CEST",
        "2025-10-24 02:30 CEST",
        "2025-10-25 02:30 CEST", "2025-10-26 02:30 CEST",  # the repeated 02:30: once
        "2025-10-27 02:30 CET", "2025-10-28 02:30 CET"]
    assert [f.late_by for f in fires(queue)] == [0, 0, 0, 0, 11.5 * 3600, 0, 0, 0, 0]
    # Nothing ran the jobs meanwhile: every later fire joined the one job still queued.
    assert len({f.job_id for f in fires(queue)}) == 1
    assert [f.outcome for f in fires(queue)][:2] == ["queued", "joined"]


def test_a_second_dispatcher_never_takes_a_fire_again(queue: Queue) -> None:
    config = config_with({"name": "poll", "job_type": "check", "every": "15m"})
    first, second = scheduler(queue, config, "a:1"), scheduler(queue, config, "b:2")
    first.start(utc(2025, 6, 1, 9, 50))
    second.start(utc(2025, 6, 1, 9, 50))
    assert first.next_due == second.next_due == utc(2025, 6, 1, 10, 0)
    first.step(utc(2025, 6, 1, 10, 0))
    second.step(utc(2025, 6, 1, 10, 0, 1))
    assert [(f.fire_at, f.worker) for f in fires(queue)] == [(utc(2025, 6, 1, 10, 0), "a:1")]
    assert second.next_due == utc(2025, 6, 1, 10, 15)


def test_a_suppressed_fire_waits_for_the_window_and_later_fires_join_it(
        queue: Queue) -> None:
    config = config_with({"name": "poll", "job_type": "check", "every": "15m"})
    queue.suppress("ops_check", utc(2025, 6, 1, 9, 55), utc(2025, 6, 1, 10, 40), "console:bob",
                   now=utc(2025, 6, 1, 9, 55))
    sched = scheduler(queue, config)
    sched.start(utc(2025, 6, 1, 9, 50))
    run_until(sched, utc(2025, 6, 1, 10, 30))
    taken = fires(queue)
    assert [(f.outcome, f.held_until) for f in taken] == [
        ("queued", utc(2025, 6, 1, 10, 40)), ("joined", utc(2025, 6, 1, 10, 40)),
        ("joined", utc(2025, 6, 1, 10, 40))]
    assert queue.claim("w", now=utc(2025, 6, 1, 10, 39)) is None  # held by the suppression
    job = queue.claim("w", now=utc(2025, 6, 1, 10, 40))
    assert job.id == taken[0].job_id and job.channel == "ops" and job.platform == "console"
    assert len(queue.subscribers_of(job.id)) == 1  # one report for the channel, not three
    report = sched.annotate(job.id, Report(job.id, "ops_check", "ops", "succeeded",
                                           text="checked"))
    assert report.note == (
        "Scheduled runs of `ops/poll` for 2025-06-01 10:00:00 UTC, 2025-06-01 10:15:00 UTC, "
        "2025-06-01 10:30:00 UTC ran as this one job (a later fire came while the job was "
        "still waiting to start); held by a suppression until 2025-06-01 10:40:00 UTC.")


def test_a_fire_missed_with_misfire_skip_is_skipped_with_a_notice(queue: Queue) -> None:
    config = config_with({"name": "poll", "job_type": "check", "every": "1h",
                          "misfire": "skip"})
    sched = scheduler(queue, config)
    sched.start(utc(2025, 6, 1, 7, 30))  # the schedule is known from 07:30 ...
    sched.start(utc(2025, 6, 1, 10, 20))  # ... and the next dispatcher starts at 10:20
    sched.step(utc(2025, 6, 1, 10, 20))
    assert [(f.outcome, f.fire_at, f.job_id) for f in fires(queue)] == [
        ("skipped", utc(2025, 6, 1, 10, 0), None)]
    assert queue.jobs_in(("queued",)) == []
    [notice] = queue.take_channel_deliveries("console", "ops")
    assert render_delivery(Delivery.from_row(notice)) == (
        "Schedule `ops/poll` did not run for 2025-06-01 10:00:00 UTC: no dispatcher was "
        "running then, and it is 20 min late now (its misfire policy is skip). Next run: "
        "2025-06-01 11:00:00 UTC.")
    assert sched.next_due == utc(2025, 6, 1, 11, 0)


def test_a_paused_schedule_is_passed_over_and_resuming_does_not_make_up(queue: Queue) -> None:
    config = config_with({"name": "poll", "job_type": "check", "every": "1h"})
    spec = config.schedules()[0]
    sched = scheduler(queue, config)
    sched.start(utc(2025, 6, 1, 7, 30))
    assert schedule_store.set_paused(queue.engine, spec, "bob", utc(2025, 6, 1, 7, 40))
    run_until(sched, utc(2025, 6, 1, 9, 30))
    assert fires(queue) == []
    assert schedule_store.set_paused(queue.engine, spec, None, utc(2025, 6, 1, 9, 40))
    restarted = scheduler(queue, config)
    restarted.start(utc(2025, 6, 1, 9, 45))
    run_until(restarted, utc(2025, 6, 1, 10, 0))
    assert [f.fire_at for f in fires(queue)] == [utc(2025, 6, 1, 10, 0)]


def test_a_user_asking_for_the_same_job_joins_the_scheduled_one(queue: Queue) -> None:
    config = config_with({"name": "poll", "job_type": "check", "every": "1h"})
    sched = scheduler(queue, config)
    sched.start(utc(2025, 6, 1, 9, 30))
    sched.step(utc(2025, 6, 1, 10, 0))
    asked = queue.enqueue("ops_check", {}, Requester("console", "bob", channel="cli-1"),
                          timeout=60)
    assert asked.joined and asked.job_id == fires(queue)[0].job_id


def test_a_reload_starts_new_schedules_and_stops_removed_ones(queue: Queue) -> None:
    poll = {"name": "poll", "job_type": "check", "every": "1h"}
    sched = scheduler(queue, config_with(poll))
    sched.start(utc(2025, 6, 1, 9, 30))
    assert sched.next_due == utc(2025, 6, 1, 10, 0)
    sched.reload(config_with(poll, {"name": "quarter", "job_type": "report",
                                    "args": {"site": "oslo"}, "every": "15m"}))
    sched.step(utc(2025, 6, 1, 9, 35))  # (the loop takes the new config up at its next step)
    assert sched.next_due == utc(2025, 6, 1, 9, 45)
    sched.reload(config_with())
    sched.step(utc(2025, 6, 1, 9, 40))
    assert sched.next_due is None
    run_until(sched, utc(2025, 6, 1, 12, 0))
    assert fires(queue) == []
