"""Schedules with real `chatops dispatcher` processes: a fire missed while stopped runs once,
late, and says so; pause and resume survive a restart; two dispatchers on PostgreSQL run each
fire once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from chatops import schedule_store
from chatops.config_loader import load_config
from chatops.plain_text import render_delivery
from chatops.platform import Delivery
from chatops.schedule_chat import span
from chatops.schedule_tables import schedule_fires
from chatops.service import open_queue
from chatops.settings import load_settings
from tests.support.cli import Chatops, spine_env
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # real processes: seconds per test

CONFIG = '''
raw_config = {{
    "sched": {{
        "default_channel": "console:sched",
        "jobs": {{"tick": {{"run_args_template":
                            "echo tick >> \\"$CHATOPS_WRITEABLE_DIR/ticks.txt\\"; echo ticked",
                            "report_stdout": True}}}},
        "schedules": [{{"name": "tick", "job_type": "tick", {trigger}}}],
    }},
}}
'''


def stack(tmp_path: Path, trigger: str, **env: str) -> Chatops:
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "job_configs.py"
    config.write_text(CONFIG.format(trigger=trigger))
    runner = Chatops(home, spine_env(home, CHATOPS_CONFIG=str(config), **env))
    runner("db", "upgrade", check=True)
    return runner


def ticks(runner: Chatops) -> int:
    path = load_settings(runner.env).writeable_dir / "ticks.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def fires(runner: Chatops) -> list:
    queue = open_queue(load_settings(runner.env))
    with queue.engine.connect() as conn:
        return list(conn.execute(select(schedule_fires).order_by(schedule_fires.c.fire_at)))


def test_a_fire_missed_while_stopped_runs_once_late_and_says_how_late(tmp_path: Path) -> None:
    minute = int((time.time() - 600) // 60 % 60)  # fired ten minutes ago, and hourly before
    runner = stack(tmp_path, f'"cron": "{minute} * * * *"')
    settings = load_settings(runner.env)
    queue = open_queue(settings)
    # The schedule has been there for three hours, and no dispatcher ran since.
    schedule_store.sync_states(queue.engine, load_config(settings.config_path).schedules(),
                               time.time() - 3 * 3600)
    try:
        runner.start_dispatcher()
        [delivery] = wait_until(lambda: queue.take_channel_deliveries("console", "sched"),
                                what="the scheduled job's report")
    finally:
        runner.stop_all()
    [fire] = fires(runner)
    assert 600 <= fire.late_by < 720
    fired_for = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(fire.fire_at))
    assert render_delivery(Delivery.from_row(delivery)) == (
        f"Scheduled run of `sched/tick` for {fired_for}; it started {span(fire.late_by)} "
        f"late: no dispatcher was running at {fired_for}.\nticked")
    assert ticks(runner) == 1  # once, not once per missed hour
    assert "earlier runs before" in runner.log_text()


def test_pause_and_resume_survive_a_restart(tmp_path: Path) -> None:
    runner = stack(tmp_path, '"every": "1s"')
    try:
        runner.start_dispatcher()
        wait_until(lambda: ticks(runner) >= 1, what="a first scheduled run")
        paused = runner.chat("pause schedule sched tick")
        assert paused.stdout == ("Paused schedule `sched/tick`: it will not run until "
                                 "`resume schedule sched tick`.\n")
        runner.stop_all()
        before = ticks(runner)
        runner.start_dispatcher()
        wait_until(lambda: runner.log_text().count("is paused: its run for") >= 2,
                   what="two fires passed over after the restart")
        assert ticks(runner) == before
        listing = runner.chat("schedules").stdout
        assert listing.startswith("Schedules (1):\n• `sched/tick`: `sched_tick`, every 1s; "
                                  "paused by alice since ")
        resumed = runner.chat("resume schedule sched tick")
        assert resumed.stdout.startswith("Resumed schedule `sched/tick`; next run ")
        runner.stop_all()
        runner.start_dispatcher()
        wait_until(lambda: ticks(runner) > before, what="a run after resuming")
        assert "next " in runner.chat("schedules").stdout
        status = runner.chat("status").stdout
        assert "Next scheduled runs (1 schedule active, 0 paused):\n• `sched/tick` " in status
    finally:
        runner.stop_all()


def test_two_dispatchers_on_postgres_run_each_fire_once(tmp_path: Path, pg_url: str) -> None:
    runner = stack(tmp_path, '"every": "1s"', CHATOPS_DATABASE_URL=pg_url)
    queue = open_queue(load_settings(runner.env))
    try:
        runner.start_dispatcher()
        runner.start_dispatcher()
        wait_until(lambda: len(fires(runner)) >= 8, timeout=60, what="eight fires")
        assert runner.chat("pause schedule sched tick").returncode == 0
        wait_until(lambda: not queue.jobs_in(("queued", "running")), what="the last run's end")
    finally:
        runner.stop_all()
    taken = fires(runner)
    assert len({f.fire_at for f in taken}) == len(taken)
    jobs = {f.job_id for f in taken}
    assert {queue.get(job_id).state for job_id in jobs} == {"succeeded"}
    assert ticks(runner) == len(jobs)  # each job ran once; a fire never made two
    # Both dispatchers went for the same fires: the one that lost said so.
    assert "was taken by another dispatcher" in runner.log_text()
