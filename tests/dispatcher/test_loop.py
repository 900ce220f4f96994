"""The spine end to end: `chatops chat` -> queue -> a real `chatops dispatcher` -> the report.

Every test drives the real command-line programs as subprocesses against a private SQLite
database; nothing of the project is mocked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import CHATOPS, REPO, Chatops, most_at_once
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # whole stacks and real processes: seconds per test


def job_id_of(result: subprocess.CompletedProcess) -> int:
    match = re.search(r"\(job (\d+)\)", result.stderr)
    assert match, f"no job id in: {result.stderr!r} / {result.stdout!r}"
    return int(match.group(1))


def background_chat(chatops: Chatops, text: str, user: str = "alice") -> subprocess.Popen:
    return subprocess.Popen([CHATOPS, "chat", text, "--user", user], env=chatops.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_listed(chatops: Chatops, pattern: str, timeout: float = 15) -> re.Match:
    """Wait until `chatops jobs list` shows a line matching ``pattern``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = re.search(pattern, chatops("jobs", "list").stdout, re.M)
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"never listed: {pattern}\n{chatops('jobs', 'list').stdout}")


def job_pid(chatops: Chatops, job_id: int, timeout: float = 10) -> int:
    """The pid of a running job's process, once its dispatcher has recorded it in the job row."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = re.search(r"^\s+pid: (\d+)$", chatops("jobs", "show", str(job_id)).stdout, re.M)
        if found:
            return int(found.group(1))
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never recorded a pid")


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_say_hello_prints_the_jobs_stdout(running: Chatops) -> None:
    result = running.chat("tests echo Hello Bob")
    assert (result.returncode, result.stdout) == (0, "Hello Bob\n")


def test_hostile_arguments_are_echoed_literally(running: Chatops, scratch: Path) -> None:
    target = scratch / "pwned"
    hostile = f"$(touch {target}) `touch {target}` ; rm -rf ~ && echo <poem> | cat"
    result = running.chat(f"tests echo {hostile}")
    assert result.stdout == hostile + "\n"
    assert not target.exists()
    result = running.chat("tests pair <poem> 'quoted words'")
    assert result.stdout == "<poem>|'quoted words'\n"


def test_failure_report_says_what_failed_and_how_to_see_more(running: Chatops) -> None:
    result = running.chat("tests fail 3")
    assert result.returncode == 1
    job_id = job_id_of(result)
    assert result.stdout == (
        f"`tests_fail` (job {job_id}) failed with exit code 3.\n"
        "Last lines of stderr:\n```\noops\n```\n"
        f"See the logs with `logs {job_id}` (stdout) or `logs {job_id} stderr`.\n")
    logs = running.chat(f"logs {job_id} stderr")
    assert logs.stdout == f"The end of job {job_id}'s stderr:\n```\noops\n```\n"
    assert running("jobs", "logs", str(job_id), "--stderr").stdout == "oops\n"


def test_timeout_kills_the_whole_process_group(running: Chatops, scratch: Path) -> None:
    marker = scratch / "child"
    result = running.chat(f"tests slow {marker}")
    assert result.returncode == 1
    assert "timed out after 2 s and was stopped" in result.stdout
    child = int(marker.read_text().split()[1])
    deadline = time.time() + 5
    while pid_alive(child) and time.time() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child), "the job's grandchild outlived the timeout"
    show = running("jobs", "show", str(job_id_of(result))).stdout
    assert "state: timed_out" in show


def test_cancel_stops_a_running_job(running: Chatops) -> None:
    waiter = background_chat(running, "tests sleep 100")
    deadline = time.time() + 10
    job_id = None
    while job_id is None and time.time() < deadline:
        rows = running("jobs", "list", "--state", "running").stdout
        found = re.search(r"^\s+(\d+)\s+running\s+tests_sleep", rows, re.M)
        job_id = int(found.group(1)) if found else None
        time.sleep(0.05)
    assert job_id, "the sleep job never started"
    pid = job_pid(running, job_id)
    refused = running.chat(f"cancel {job_id}", user="mallory")  # not hers, not an admin
    assert refused.stdout.startswith(f"Job {job_id} is not yours")
    result = running.chat(f"cancel {job_id}", user="bob")  # an admin
    assert result.stdout == f"Stopping job {job_id} (`tests_sleep`); its report will follow.\n"
    out, _ = waiter.communicate(timeout=20)
    assert waiter.returncode == 1
    assert f"`tests_sleep` (job {job_id}) was cancelled by console:bob." in out
    assert not pid_alive(pid)
    assert "state: cancelled" in running("jobs", "show", str(job_id)).stdout


def queued_jobs(chatops: Chatops, job_type: str, count: int) -> list[dict]:
    """The queued jobs of ``job_type`` once there are ``count`` of them, else []."""
    listed = [json.loads(line) for line in chatops("jobs", "list", "--json").stdout.splitlines()]
    queued = [job for job in listed if job["job_type"] == job_type and job["state"] == "queued"]
    return queued if len(queued) == count else []


def release(chatops: Chatops, *names: str) -> None:
    """Let the `tests hold NAME` jobs end."""
    for name in names:
        (chatops.home / "writeable" / f"release-{name}").touch()


def test_equal_requests_join_one_job_and_every_requester_gets_the_report(
        running: Chatops) -> None:
    first = background_chat(running, "tests hold a", user="ann")
    wait_listed(running, r"running\s+tests_hold")  # the type allows one at a time
    second = background_chat(running, "tests hold b", user="ben")
    wait_listed(running, r"queued\s+tests_hold")
    third = background_chat(running, "tests hold b", user="cat")
    other = background_chat(running, "tests hold d", user="dan")
    queued = {json.loads(job["args"])["name"]: job["id"] for job in wait_until(
        lambda: queued_jobs(running, "tests_hold", 2), 30, "ben's and dan's jobs queued")}
    wait_until(lambda: running("jobs", "show", str(queued["b"])).stdout.count("subscriber:") == 2,
               30, "cat to join ben's job")
    release(running, "a", "b", "d")
    outputs = {name: p.communicate(timeout=60) for name, p in
               (("ann", first), ("ben", second), ("cat", third), ("dan", other))}
    ids = {name: job_id_of(subprocess.CompletedProcess([], 0, out, err))
           for name, (out, err) in outputs.items()}
    assert ids["ben"] == ids["cat"] != ids["dan"] != ids["ann"]
    assert (f"Job {ids['ben']} (`tests_hold`) will start when the one running now "
            "finishes.") in outputs["ben"][0]
    assert (f"Job {ids['ben']} (`tests_hold`) with the same arguments is already scheduled; "
            "you will get its report too.") in outputs["cat"][0]
    for name in outputs:
        assert outputs[name][0].rstrip().endswith("done"), (name, outputs[name])
    show = running("jobs", "show", str(ids["ben"])).stdout
    assert show.count("subscriber:") == 2


def test_delay_seconds_starts_the_job_later(running: Chatops) -> None:
    from chatops.service import open_queue
    from chatops.settings import load_settings

    asked = time.time()
    result = running.chat("tests later")
    assert re.search(r"will start at \d\d:\d\d:\d\d UTC \(in \d seconds\)", result.stdout)
    # The console says when and returns: it does not sit waiting for a job that starts later.
    assert result.returncode == 0
    assert "(it starts later: follow it with `chatops jobs show" in result.stderr
    job_id = job_id_of(result)
    wait_listed(running, rf"^\s*{job_id}\s+succeeded\s+tests_later")
    job = open_queue(load_settings(running.env)).get(job_id)
    assert job.started_at >= asked + 2
    assert running("jobs", "logs", str(job_id)).stdout == "later\n"


def test_suppression_defers_and_never_drops(running: Chatops) -> None:
    from chatops.queue import Queue
    from chatops.service import open_queue
    from chatops.settings import load_settings

    bad = running.chat("tests suppress sleeps from 25:00 to 26:00")
    assert bad.returncode == 1
    assert "`25:00` is not a time: use HH:MM or HHMM (24-hour, UTC)" in bad.stdout
    reversed_window = running.chat("tests suppress sleeps from 1000 to 0900")
    assert "The start (1000) must be before the end (0900)" in reversed_window.stdout
    ok = running.chat("tests suppress sleeps from 00:00 to 00:01")
    assert "`tests_sleep` jobs are suppressed from" in ok.stdout
    assert running.chat("tests unsuppress sleeps").stdout.startswith(
        "Removed 1 suppression of `tests_sleep`")

    queue: Queue = open_queue(load_settings(running.env))
    window_end = time.time() + 2
    queue.suppress("tests_sleep", time.time() - 1, window_end, "test")
    result = running.chat("tests sleep 0")
    assert "`tests_sleep` is suppressed until" in result.stdout
    job_id = job_id_of(result)
    wait_listed(running, rf"^\s*{job_id}\s+succeeded\s+tests_sleep")
    job = queue.get(job_id)
    assert job.started_at >= window_end


def test_cancel_job_action_cancels_scheduled_jobs_and_tells_their_requesters(
        running: Chatops) -> None:
    blocker = background_chat(running, "tests hold a")
    wait_listed(running, r"running\s+tests_hold")
    waiting = background_chat(running, "tests hold b", user="ben")
    wait_listed(running, r"queued\s+tests_hold")
    result = running.chat("tests cancel holds")
    assert re.match(r"Cancelled 1 scheduled job of `tests_hold` \(\d+\)\.", result.stdout)
    out, _ = waiting.communicate(timeout=30)
    assert "was cancelled by console:alice" in out
    release(running, "a")
    blocker.communicate(timeout=30)


def test_blocks_reports_and_their_fallbacks(running: Chatops) -> None:
    good = running.chat("tests blocks good.json")
    assert good.stdout == "*Hi* there\n———\n"
    invalid = running.chat("tests blocks invalid.json")
    assert invalid.returncode == 0
    assert invalid.stdout.startswith("Could not show this as blocks: the job's output is not "
                                     "valid JSON")
    assert '{"type": oops' in invalid.stdout
    too_many = running.chat("tests blocks toomany.json")
    assert "the job printed 51 blocks; at most 50 fit a message" in too_many.stdout


def test_text_code_file_and_silent_reports(running: Chatops) -> None:
    assert running.chat("tests code 3").stdout == "```\n1\n2\n3\n```\n"
    empty = running.chat("tests nostdout")
    assert re.fullmatch(r"`tests_nostdout` \(job \d+\) succeeded with no output\.\n",
                        empty.stdout)
    file_report = running.chat("tests file")
    assert "succeeded; its output is attached." in file_report.stdout
    assert "1\n2\n3\n4\n5" in file_report.stdout
    silent = running.chat("tests silent")
    assert re.fullmatch(r"\(job \d+ succeeded\)\n", silent.stdout)


def test_job_environment_is_an_allow_list(chatops: Chatops) -> None:
    chatops.env.update(SLACK_BOT_TOKEN="xoxb-very-secret-token", CHATOPS_TEST_VISIBLE="yes",
                       GITHUB_WEBHOOK_SECRET="hunter2-webhook", AWS_SECRET_ACCESS_KEY="aws")
    chatops.start_dispatcher()
    env = chatops.chat("tests env").stdout
    assert "CHATOPS_TEST_VISIBLE=yes" in env
    assert f"PYTHONPATH={REPO}" in env
    assert "CHATOPS_WRITEABLE_DIR=" in env
    for secret in ("xoxb-very-secret-token", "hunter2-webhook", "AWS_SECRET", "CHATOPS_HOME",
                   "CHATOPS_DATABASE"):
        assert secret not in env
    where = chatops.chat("tests pwd").stdout.splitlines()
    assert where[0].endswith("tests/workspace/tests")


def test_two_runs_within_one_second_get_separate_log_files(running: Chatops) -> None:
    first, second = (job_id_of(running.chat("tests logdir")) for _ in range(2))
    for job_id in (first, second):
        assert running("jobs", "logs", str(job_id)).stdout == "run\n"
    folder = running.home / "logs/tests/tests_logdir"  # one folder per job type
    assert sorted(p.name for p in folder.iterdir()) == [f"{first}.stdout", f"{second}.stdout"]


def test_a_job_that_cannot_start_fails_alone(running: Chatops) -> None:
    bad = running.chat("tests bad x")
    assert bad.returncode == 1
    assert "could not be started: run_args_template 'echo {words!z}' cannot be filled" in bad.stdout
    assert running.chat("tests echo still alive").stdout == "still alive\n"


def test_killed_dispatcher_leaves_no_job_stuck(chatops: Chatops) -> None:
    dispatcher = chatops.start_dispatcher()
    waiter = background_chat(chatops, "tests sleep 100")
    job_id = int(wait_listed(chatops, r"^\s+(\d+)\s+running\s+tests_sleep").group(1))
    pid = job_pid(chatops, job_id)  # all a dispatcher leaves of its jobs: their rows
    os.kill(dispatcher.pid, signal.SIGKILL)
    dispatcher.wait()
    chatops.start_dispatcher()
    out, _ = waiter.communicate(timeout=20)
    assert (f"`tests_sleep` (job {job_id}) was lost: the dispatcher running it stopped "
            "unexpectedly; it was not re-run.") in out
    assert "state: lost" in chatops("jobs", "show", str(job_id)).stdout
    deadline = time.time() + 5
    while pid_alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), "the orphaned job was left running"
    assert chatops.chat("tests echo after").stdout == "after\n"


def test_status_help_and_not_understood(running: Chatops) -> None:
    assert running.chat("status").stdout == (
        "Nothing is running or scheduled, and no jobs are suppressed.\n")
    waiter = background_chat(running, "tests hold a")
    wait_listed(running, r"running\s+tests_hold")
    queued = background_chat(running, "tests hold b")
    wait_listed(running, r"queued\s+tests_hold")
    status = running.chat("status").stdout
    assert re.search(r"Running: 1 job\n• job \d+ `tests_hold` started .* for alice\n"
                     r"Scheduled: 1 job\n• job \d+ `tests_hold` starts as soon as possible",
                     status), status
    help_text = running.chat("help").stdout
    assert "• `tests`: jobs for the test suite" in help_text
    assert "• `secret` 🔒: restricted namespace" in help_text
    assert "• `tests echo [words]`: echo words" in running.chat("tests help").stdout
    unknown = running.chat("tests frobnicate")
    assert unknown.returncode == 1
    assert unknown.stdout.startswith("Sorry, I didn't understand `tests frobnicate`.\n"
                                     "Commands in `tests`")
    release(running, "a", "b")
    waiter.communicate(timeout=30)
    queued.communicate(timeout=30)


def test_allowed_users_and_restricted_logs(running: Chatops) -> None:
    refused = running.chat("secret hello", user="mallory")
    assert refused.returncode == 1
    assert "`secret` is limited to the users listed for it" in refused.stdout
    assert "(job" not in refused.stderr
    allowed = running.chat("secret hello", user="alice")
    assert allowed.stdout == "secret hello\n"
    job_id = job_id_of(allowed)
    assert running.chat(f"logs {job_id}", user="mallory").stdout == (
        f"Job {job_id} is not yours: only the person who asked for it, the people its namespace "
        "names and admins can see its logs or cancel it.\n")
    assert "secret hello" in running.chat(f"logs {job_id}", user="alice").stdout


def test_cli_errors_and_exit_codes(chatops: Chatops, tmp_path: Path) -> None:
    missing = chatops("jobs", "show", "999")
    assert missing.returncode == 4
    assert "there is no job 999" in missing.stderr
    no_db = Chatops(tmp_path, {**chatops.env, "CHATOPS_HOME": str(tmp_path / "empty")})
    result = no_db("jobs", "list")
    assert result.returncode == 3
    assert "run `chatops db upgrade` first" in result.stderr
    bad_config = Chatops(tmp_path, {**chatops.env,
                                    "CHATOPS_CONFIG": str(tmp_path / "nope.py")})
    result = bad_config("jobs", "list")
    assert result.returncode == 3 and "no such config file" in result.stderr
    assert chatops("--help").returncode == 0
    queued = chatops.chat("tests echo later", "--no-wait")  # no dispatcher: it waits queued
    assert "no dispatcher is running" not in queued.stderr  # --no-wait does not check
    listing = chatops("jobs", "list").stdout
    assert re.search(r"\d+\s+queued\s+tests_echo", listing)


def test_global_concurrency_cap(chatops: Chatops) -> None:
    chatops.env["CHATOPS_MAX_CONCURRENCY"] = "2"
    chatops.start_dispatcher()
    naps = [background_chat(chatops, f"tests nap {n}") for n in range(5)]
    assert sorted(p.communicate(timeout=60)[0] for p in naps) == [f"{n}\n" for n in range(5)]
    most = most_at_once(chatops.home / "writeable/nap.txt")  # what the jobs wrote themselves
    assert most == 2, f"{most} jobs ran at once with a cap of 2"
