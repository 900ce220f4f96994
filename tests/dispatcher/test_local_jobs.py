"""Local jobs: exec without bash when bash would only split words (same argv, same environment),
output through pipes into one log folder per job type, and old jobs' logs still readable."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from chatops import migrate
from chatops.config_loader import load_config
from chatops.db import make_engine
from chatops.joblogs import JobLogs
from chatops.service import open_service
from chatops.settings import load_settings
from dispatcher.local import Launch, LocalExecutor, LocalRun
from tests.dispatcher.test_loop import job_id_of
from tests.support.cli import TEST_CONFIG, Chatops, spine_env
from webserver.app import create_app

pytestmark = pytest.mark.slow  # real processes: seconds per test

HOSTILE = [
    "$(touch /tmp/pwned) `touch /tmp/pwned` ; rm -rf ~ && echo <poem> | cat",
    "'quoted words'", "it's", 'a "double" quote', "back\\slash \\n", "", "  spaced  out  ",
    "héllo wörld", "line\nbreak\ttab", "!history #comment ~tilde *glob? [x] {a,b} %1 ^x",
    "--help", "-n", "A=b", "$HOME ${PATH} $((1+1))",
]


def run_to_end(executor: LocalExecutor, launch: Launch) -> tuple[bool, str]:
    """Start a prepared job, wait for it, and return (ran without bash, its stdout)."""
    run, _ = finished(executor, launch)
    return run.direct, launch.logs.path("stdout").read_text()


def finished(executor: LocalExecutor, launch: Launch) -> tuple[LocalRun, int]:
    """Start a prepared job and wait for it: the run and its exit code."""
    run = executor.spawn(launch)
    exit_code = run.wait()
    for output in run.outputs:
        output.pump(drain=True)
        output.close()
    run.close()
    return run, exit_code


def what_it_was_given(executor: LocalExecutor, job_type: str, with_bash: bool, logs: JobLogs
                      ) -> tuple[int, str]:
    """Run one of the tests namespace's self* jobs, directly or under bash: (pid, stdout)."""
    launch = executor.prepare(logs.job_id, load_config(TEST_CONFIG).job(job_type), {}, logs)
    assert launch.direct is not None, job_type
    if with_bash:
        launch = dataclasses.replace(launch, direct=None)
    run, exit_code = finished(executor, launch)
    assert (exit_code, run.direct) == (0, not with_bash)
    return run.pid, launch.logs.path("stdout").read_text()


def test_argv_and_environment_without_bash_are_those_bash_gives(tmp_path: Path) -> None:
    settings = load_settings(spine_env(tmp_path))
    spec = load_config(TEST_CONFIG).job("tests_argv")
    executor = LocalExecutor(settings)
    for n, words in enumerate(HOSTILE):
        launch = executor.prepare(n, spec, {"words": words}, JobLogs(tmp_path, n))
        assert launch.direct is not None, f"{launch.command!r} would need bash"
        ran_direct, direct = run_to_end(executor, launch)
        bash_launch = dataclasses.replace(launch, job_id=1000 + n, direct=None,
                                          logs=JobLogs(tmp_path, 1000 + n))
        ran_with_bash, with_bash = run_to_end(executor, bash_launch)
        assert (ran_direct, ran_with_bash) == (True, False)
        assert json.loads(direct) == json.loads(with_bash), launch.command
        assert json.loads(direct)[0] == ["-c", words]


def test_a_job_has_its_own_session_its_folder_and_nothing_else_of_the_dispatcher(
        tmp_path: Path) -> None:
    """What Popen(start_new_session=True, close_fds=True, restore_signals=True) gives, with or
    without bash: this process ignores SIGPIPE and SIGXFSZ (as Python does), blocks SIGUSR1 and
    holds an inheritable file; a job sees none of it."""
    settings = load_settings(spine_env(tmp_path))
    executor = LocalExecutor(settings)
    leak, other_end = os.pipe()
    os.set_inheritable(leak, True)
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        for n, with_bash in enumerate((False, True)):
            pid, stat = what_it_was_given(executor, "tests_selfstat", with_bash,
                                          JobLogs(tmp_path, 10 * n + 1))
            fields = stat.split(")", 1)[1].split()
            assert (fields[2], fields[3]) == (str(pid), str(pid))  # process group, session
            status = dict(line.split(":\t", 1) for line in stat.splitlines() if ":\t" in line)
            ignored, blocked = int(status["SigIgn"], 16), int(status["SigBlk"], 16)
            for number in (signal.SIGPIPE, signal.SIGXFSZ):
                assert not ignored & 1 << (number - 1), (with_bash, number)
            assert blocked == 0, with_bash
            _, fds = what_it_was_given(executor, "tests_selffds", with_bash,
                                       JobLogs(tmp_path, 10 * n + 2))
            assert fds == "0\n1\n2\n3\n"  # 3: the folder ls reads
            _, cwd = what_it_was_given(executor, "tests_selfcwd", with_bash,
                                       JobLogs(tmp_path, 10 * n + 3))
            assert cwd == f"{settings.workspace_dir / 'tests'}\n/dev/null\n"
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        os.close(leak)
        os.close(other_end)


def test_a_job_whose_folder_is_gone_fails_to_start_naming_the_folder(tmp_path: Path) -> None:
    settings = load_settings(spine_env(tmp_path))
    executor = LocalExecutor(settings)
    gone = tmp_path / "gone"
    launch = executor.prepare(1, load_config(TEST_CONFIG).job("tests_quick"), {},
                              JobLogs(tmp_path, 1))
    assert launch.direct is not None
    for moved in (dataclasses.replace(launch, cwd=gone),
                  dataclasses.replace(launch, cwd=gone, direct=None)):
        with pytest.raises(OSError) as failed:
            executor.spawn(moved)
        assert str(failed.value) == f"[Errno 2] No such file or directory: '{gone}'"


def test_command_lines_that_need_bash_get_bash(tmp_path: Path) -> None:
    settings = load_settings(spine_env(tmp_path))
    config = load_config(TEST_CONFIG)
    executor = LocalExecutor(settings)

    def direct(job_type: str, **args: str) -> bool:
        logs = JobLogs(tmp_path, 1)
        return executor.prepare(1, config.job(job_type), args, logs).direct is not None

    assert direct("tests_echo", words="plain words") and direct("tests_quick")
    assert not direct("tests_echo", words="--help")  # bash's echo prints it; /bin/echo helps
    assert not direct("tests_pair", first="a", second="b")  # printf: a builtin of its own
    assert not direct("tests_sleep", seconds="1")  # `;`
    assert not direct("tests_env") and not direct("tests_late")  # a pipe; `&`, `(`


def test_builtins_keep_bashs_behaviour(running: Chatops) -> None:
    assert running.chat("tests echo --help").stdout == "--help\n"
    assert running.chat("tests echo --version").stdout == "--version\n"
    assert running.chat("tests echo plain words").stdout == "plain words\n"


def test_a_job_that_prints_nothing_makes_no_file(running: Chatops) -> None:
    quiet = job_id_of(running.chat("tests nostdout"))
    assert running("jobs", "logs", str(quiet)).stdout == ""
    assert running.chat(f"logs {quiet}").stdout == f"Job {quiet} wrote nothing to stdout.\n"
    empty = running.chat("tests emptyfile")
    assert re.fullmatch(r"`tests_emptyfile` \(job \d+\) succeeded with no output\.\n",
                        empty.stdout)
    spoke = job_id_of(running.chat("tests echo hi"))
    assert sorted(p.name for p in (running.home / "logs/tests").rglob("*") if p.is_file()) == [
        f"{spoke}.stdout"]


def test_output_written_after_the_job_ended_is_kept(running: Chatops) -> None:
    result = running.chat("tests late")
    assert result.stdout == "early\n"  # the report: what the job wrote before it ended
    job_id = job_id_of(result)
    deadline = time.time() + 20
    while running("jobs", "logs", str(job_id)).stdout != "early\nlate\n":
        assert time.time() < deadline, running("jobs", "logs", str(job_id)).stdout
        time.sleep(0.1)


def test_logs_of_jobs_from_before_the_upgrade_stay_readable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    chatops = Chatops(home, spine_env(home, CHATOPS_WEB_TOKEN="old-logs-token"))
    home.mkdir()
    database = home / "chatops.db"
    migrate.upgrade(make_engine(f"sqlite:///{database}"), "0008")
    folder = home / "logs/tests/tests_echo/7"  # the layout before migration 0009
    folder.mkdir(parents=True)
    (folder / "stdout").write_text("old output\n")
    (folder / "stderr").write_text("old warning\n")
    (folder / "pid").write_text("4242 123456\n")
    with sqlite3.connect(database) as db:
        db.execute(
            "INSERT INTO jobs (id, namespace, job_type, args, state, concurrency, timeout, "
            "created_at, start_after, started_at, finished_at, platform, channel, requested_by, "
            "is_direct, cancel_requested, exit_code, log_dir, summary) VALUES (7, 'tests', "
            "'tests_echo', '{}', 'succeeded', 1, 60, 1, 1, 1, 2, 'console', 'c', 'alice', 0, 0, "
            "0, ?, 'succeeded')", (str(folder),))
    chatops("db", "upgrade", check=True)

    assert chatops("jobs", "logs", "7").stdout == "old output\n"
    assert chatops("jobs", "logs", "7", "--stderr").stdout == "old warning\n"
    assert chatops.chat("logs 7 stderr").stdout == (
        "The end of job 7's stderr:\n```\nold warning\n```\n")
    client = create_app(open_service(load_settings(chatops.env))).test_client()
    client.get("/login?token=old-logs-token")
    assert "old output" in client.get("/jobs/7").text
    assert client.get("/jobs/7/stderr").text == "old warning\n"
