"""The `chatops` command as an admin meets it: help for every option, `--version`, what
`db upgrade` did, readable job times, refused filters, one exit code per outcome, the logs of a
running job, `prune` and `db backup`. Real processes on a private CHATOPS_HOME."""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from sqlalchemy import update

from chatops.alarms import queue_notice
from chatops.cli import build_parser
from chatops.db import deliveries, jobs
from chatops.joblogs import job_logs
from chatops.service import open_queue
from chatops.settings import load_settings
from tests.support.cli import CHATOPS, TEST_CONFIG, Chatops, spine_env
from tests.support.wait import wait_until

DATE_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


def _parsers(parser: argparse.ArgumentParser, name: str = "chatops"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_and_argument_says_what_it_is() -> None:
    unexplained = [f"{name} {action.dest}" for name, parser in _parsers(build_parser())
                   for action in parser._actions
                   if not isinstance(action, argparse._SubParsersAction)
                   and action.help in (None, "") and action.dest != "help"]
    assert unexplained == []


def test_version(chatops: Chatops) -> None:
    result = chatops("--version")
    assert (result.returncode, result.stdout) == (
        0, f"chatops {metadata.version('hpc-chatops')}\n")


@pytest.mark.slow
def test_db_upgrade_says_what_it_did(tmp_path: Path) -> None:
    home = tmp_path / "new"
    fresh = Chatops(home, spine_env(home))
    created = fresh("db", "upgrade")
    assert created.returncode == 0
    assert re.fullmatch(rf"created the database sqlite:///{home}/chatops.db \(schema \w+\)\n",
                        created.stdout), created.stdout
    again = fresh("db", "upgrade").stdout
    assert re.fullmatch(rf"the database sqlite:///{home}/chatops.db is up to date "
                        r"\(schema \w+\)\n", again), again


@pytest.mark.slow
def test_job_history_reads_like_times_not_numbers(chatops: Chatops) -> None:
    queued = chatops.chat("tests echo hi", "--no-wait")
    job_id = int(re.search(r"\(job (\d+)\)", queued.stderr)[1])
    show = chatops("jobs", "show", str(job_id)).stdout
    assert re.search(rf"^\s+created_at: {DATE_TIME} \(\d+ seconds? ago\)$", show, re.M), show
    assert re.search(r"^\s+timeout: 3600 s$", show, re.M), show
    assert not re.search(r"\d{10}\.\d", show), show  # no UNIX times
    assert re.search(r"^\s+subscriber: alice on console, channel cli-[0-9a-f]+$", show, re.M), show
    listing = chatops("jobs", "list").stdout
    assert re.search(rf"^\s+{job_id}\s+queued\s+tests_echo\s+{DATE_TIME}\s+alice", listing,
                     re.M), listing

    bogus = chatops("jobs", "list", "--state", "bogus")
    assert bogus.returncode == 2
    assert "argument --state: invalid choice: 'bogus' (choose from 'queued', 'running', " \
        "'succeeded', 'failed', 'cancelled', 'timed_out', 'lost')" in bogus.stderr


@pytest.mark.slow
def test_no_such_job_is_exit_code_4_everywhere(chatops: Chatops) -> None:
    for args in (("jobs", "show", "99999"), ("jobs", "cancel", "99999"),
                 ("jobs", "logs", "99999"), ("chat", "cancel 99999"), ("chat", "logs 99999")):
        result = chatops(*args)
        assert result.returncode == 4, (args, result)
        assert "no job 99999" in result.stdout + result.stderr


def test_chat_refuses_a_user_that_is_no_login_name(chatops: Chatops) -> None:
    for user in ("", "a b"):
        result = chatops("chat", "--user", user, "help")
        assert result.returncode == 2, result
        assert result.stderr == (f"chatops chat: --user {user!r} is not a login name (letters, "
                                 "digits, '_', '.', '-'; no spaces): name who is asking, or "
                                 "leave --user out for your own login\n")
    assert chatops("chat", "--user", "alice.b", "help").returncode == 0


@pytest.mark.slow
def test_a_number_too_big_for_any_job_is_no_job(chatops: Chatops) -> None:
    huge = "99999999999999999999999"
    for args in (("jobs", "show", huge), ("jobs", "cancel", huge), ("jobs", "logs", huge)):
        result = chatops(*args)
        assert (result.returncode, result.stderr) == (4, (
            f"chatops: there is no job {huge} (`chatops jobs list` shows the history)\n")), args
    for text in (f"logs {huge}", f"cancel {huge}", f"logs {huge} stderr"):
        result = chatops.chat(text)
        assert (result.returncode, result.stdout, result.stderr) == (
            4, f"There is no job {huge}. `status` lists the current jobs.\n", ""), text
    retry, drop = chatops("notifications", "retry", huge), chatops("notifications", "drop", huge)
    assert (retry.returncode, retry.stdout, retry.stderr) == (
        1, "0 notification(s) queued again\n",
        "chatops: not every id named is a dead letter, and only those are sent again "
        "(`chatops notifications list --state dead` lists them)\n")
    assert (drop.returncode, drop.stdout, drop.stderr) == (
        1, "0 notification(s) dropped\n",
        "chatops: not every id named is pending or dead, and only those can be dropped "
        "(`chatops notifications list` shows each one's state)\n")
    for limit in (huge + "0" * 10, "-5"):
        result = chatops("jobs", "list", "--limit", limit)
        assert result.returncode == 2
        assert f"argument --limit: {limit!r} is not a count: use a whole number such as 30" \
            in result.stderr
    result = chatops.chat("logs \u00b2")  # a digit to str.isdigit(), not to int()
    assert result.returncode == 1 and "with the number of a job" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_logs_of_a_running_job_show_what_it_wrote_so_far(running: Chatops) -> None:
    queue = open_queue(load_settings(running.env))
    queued = running.chat("tests progress 60", "--no-wait")
    job_id = int(re.search(r"\(job (\d+)\)", queued.stderr)[1])
    logs = job_logs(load_settings(running.env).logs_dir, queue.get(job_id))
    wait_until(lambda: "warming up" in logs.path("stderr").read_text(errors="replace")
               if logs.path("stderr").exists() else False, what="the job's first lines")
    wait_until(lambda: logs.path("stdout").exists()
               and logs.path("stdout").read_text() == "step 1\n", what="its stdout")

    in_chat = running.chat(f"logs {job_id}")
    assert in_chat.stdout == (f"Job {job_id} (`tests_progress`) is still running; the end of "
                              "what it has written to stdout so far:\n```\nstep 1\n```\n")
    assert "warming up" in running.chat(f"logs {job_id} stderr").stdout
    from_cli = running("jobs", "logs", str(job_id))
    assert from_cli.stdout == "step 1\n"
    assert f"(job {job_id} is still running: this is what it has written so far)" in \
        from_cli.stderr
    assert running.chat(f"cancel {job_id}").returncode == 0  # its requester stops it
    echoed = int(re.search(r"\(job (\d+)\)", running.chat("tests echo hi").stderr)[1])
    quiet = running("jobs", "logs", "--stderr", str(echoed))
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (
        0, "", f"(job {echoed} wrote nothing to stderr)\n")


@pytest.mark.slow
def test_prune_removes_old_logs_and_delivered_messages_and_keeps_every_job(
        running: Chatops) -> None:
    settings = load_settings(running.env)
    queue = open_queue(settings)
    ids = [int(re.search(r"\(job (\d+)\)", running.chat(f"tests echo {word}").stderr)[1])
           for word in ("old", "older", "new")]
    old, older, new = (queue.get(job_id) for job_id in ids)
    assert all(job_logs(settings.logs_dir, job).path("stdout").exists()
               for job in (old, older, new))
    with queue.engine.begin() as conn:  # as if the first two had ended 100 days ago
        for job in (old, older):
            ago = 100 * 86400
            conn.execute(update(jobs).where(jobs.c.id == job.id).values(
                finished_at=job.finished_at - ago, started_at=job.started_at - ago))
            conn.execute(update(deliveries).where(deliveries.c.job_id == job.id).values(
                delivered_at=deliveries.c.delivered_at - ago,
                created_at=deliveries.c.created_at - ago))

    dry = running("prune", "--older-than", "90d", "--dry-run")
    assert dry.stdout.startswith("Would remove the logs of 2 jobs that ended before ")
    assert job_logs(settings.logs_dir, old).path("stdout").exists()
    done = running("prune", "--older-than", "90d")
    assert re.fullmatch(rf"Removed the logs of 2 jobs that ended before {DATE_TIME} \(\d+ KiB\) "
                        r"and 2 delivered messages\. Job rows are kept: their pages and `logs` "
                        r"say the logs were pruned\.\n", done.stdout), done.stdout

    assert [queue.get(job_id).state for job_id in ids] == ["succeeded"] * 3  # rows stay
    assert not job_logs(settings.logs_dir, old).path("stdout").exists()
    assert running("jobs", "logs", str(new.id)).stdout == "new\n"
    gone = running("jobs", "logs", str(old.id))
    assert gone.returncode == 1
    assert re.fullmatch(rf"chatops: the logs of job {old.id} were removed by `chatops prune` on "
                        rf"{DATE_TIME}, with those of every job that ended before {DATE_TIME}\n",
                        gone.stderr), gone.stderr
    assert f"The logs of job {old.id} were removed by `chatops prune`" in \
        running.chat(f"logs {old.id}").stdout
    assert "logs: removed by `chatops prune`" in running("jobs", "show", str(older.id)).stdout
    assert running("prune", "--older-than", "90d").stdout.startswith(
        "Removed the logs of 0 jobs")
    refused = running("prune", "--older-than", "forever")
    assert refused.returncode == 2
    assert "'forever' is not an age: use e.g. 90d, 12w or 36h" in refused.stderr


@pytest.mark.slow
def test_db_backup_copies_the_database_while_jobs_run(running: Chatops, tmp_path: Path) -> None:
    before = running.chat("tests echo before")
    busy = [running.start("chat", f"tests nap {n}", "--user", "bob") for n in range(6)]
    target = tmp_path / "backup.db"
    result = running("db", "backup", str(target))
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"backed up {running.home}/chatops.db to {target} \(.+\)\n",
                        result.stdout)
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT state, args FROM jobs WHERE id = ?",
                            (int(re.search(r"\(job (\d+)\)", before.stderr)[1]),)
                            ).fetchone() == ("succeeded", '{"words":"before"}')
    again = running("db", "backup", str(target))
    assert (again.returncode, again.stderr) == (
        1, f"chatops: {target} exists already: name a new file\n")
    assert [process.wait(60) for process in busy] == [0] * 6


@pytest.mark.slow
def test_env_file_gives_the_admin_the_services_settings(chatops: Chatops, tmp_path: Path) -> None:
    chatops.chat("tests echo from the service", "--no-wait")
    env_file = tmp_path / "chatops.env"
    env_file.write_text(f"# as systemd reads it\nCHATOPS_HOME='{chatops.home}'\n\n"
                        f"CHATOPS_LOG_LEVEL=\"WARNING\"\n")
    elsewhere = Chatops(tmp_path / "elsewhere", {**chatops.env,
                                                 "CHATOPS_HOME": str(tmp_path / "elsewhere")})
    listing = elsewhere("--env-file", str(env_file), "jobs", "list")
    assert listing.returncode == 0, listing.stderr
    assert re.search(r"queued\s+tests_echo", listing.stdout)  # the file won over the environment

    env_file.write_text("CHATOPS_HOME=/somewhere\nexport CHATOPS_LOG_LEVEL=INFO\n")
    broken = chatops("--env-file", str(env_file), "jobs", "list")
    assert (broken.returncode, broken.stderr) == (
        3, f"chatops: {env_file}:2: not KEY=value: 'export CHATOPS_LOG_LEVEL=INFO'\n")
    missing = chatops("--env-file", str(tmp_path / "none.env"), "db", "upgrade")
    assert (missing.returncode, missing.stderr) == (
        3, f"chatops: cannot read the settings file {tmp_path / 'none.env'}: No such file or "
        "directory\n")


def test_output_piped_into_a_reader_that_stops_early_is_no_traceback(tmp_path: Path) -> None:
    # `chatops jobs list | head -1`: head exits, the next write finds the pipe closed
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run([CHATOPS, "config", "check", str(TEST_CONFIG)],
                                env=spine_env(tmp_path), stdout=writer,
                                stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(writer)
    assert (result.returncode, result.stderr) == (0, "")


def test_notifications_list_shows_times_in_utc_and_drop_needs_ids(chatops: Chatops) -> None:
    queue_notice(open_queue(load_settings(chatops.env)), "console:admins", "a notice")
    listed = chatops("notifications", "list")
    assert listed.returncode == 0
    assert re.search(rf"^ +\d+  pending    {DATE_TIME}  ", listed.stdout, re.M), listed.stdout
    assert ("(1 of the pending is for console channels, which nothing sends: a `chatops chat` "
            "session or the web console takes its own, and the dashboard's queue page shows "
            "the others)\n") in listed.stdout
    bare = chatops("notifications", "drop")
    assert (bare.returncode, bare.stdout, bare.stderr) == (
        2, "", "chatops: name the ids to drop, or --all-dead\n")
