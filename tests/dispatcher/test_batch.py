"""Slurm batch jobs from chat, end to end on the live test cluster (as alice, over SSH).

The time-limit job takes more than a minute (Slurm enforces limits every ≈30 s), so it is
submitted when the module starts and checked last; the other tests run meanwhile.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from chatops.events import Requester
from chatops.joblogs import JobLogs, job_logs, type_folder
from chatops.platform import take_waiting
from chatops.slurm.client import CommandResult, SlurmClient
from dispatcher.batch import BatchRun
from tests.support.notify import events_handled
from tests.support.remote import NAMES, SERVICE_SECRETS, Harness, cluster_env, cluster_settings
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # needs the test cluster, Synapse or a browser


def batch_job(command: str, **slurm: object) -> dict:
    return {"run_args_template": command, "timeout": 600,
            "slurm": {"partition": "debug", "time": "5", "mem": "64M", "poll_seconds": 2,
                      **slurm}}


def one_job(name: str, job: dict) -> dict:
    """A config of one namespace `hpc` on the test cluster, with one job and its command."""
    return {"hpc": {"cluster": "test", "jobs": {name: job},
                    "slack": [{"command": name, "help": name, "action": "schedule_job",
                               "job_type": name}]}}


@pytest.fixture(scope="module")
def workdir() -> str:
    env = cluster_env()
    return f"{env['CHATOPS_TEST_JOBS_DIR']}/batch-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, workdir: str) -> Iterator[Harness]:
    env = cluster_env()
    home = tmp_path_factory.mktemp("batch-home")
    (home / "workspace" / "hpc").mkdir(parents=True)
    (home / "workspace" / "hpc" / "input.txt").write_text("staged input\n")
    jobs = {
        "ok": batch_job("echo batch-ok {word}; cat input.txt; sleep 3", workdir=workdir,
                        stage=["input.txt"]),
        "fail": batch_job("echo about to fail; exit 3", workdir=workdir),
        "limit": batch_job("echo started; sleep 300", workdir=workdir, time="1"),
        "long": batch_job("echo waiting; sleep 300", workdir=workdir),
        "sim": batch_job("echo {who}; sleep 300", workdir=workdir),
        "chatty": batch_job("echo first line; echo oops >&2; sleep 300", workdir=workdir),
        "token": {**batch_job('echo "token=$CHATOPS_TEST_TOKEN"', workdir=workdir),
                  "env": ["CHATOPS_TEST_TOKEN"]},
        "names": {**batch_job(NAMES, workdir=workdir), "env": ["CHATOPS_TEST_TOKEN"]},
    }
    commands = [{"command": "ok [word]", "help": "ok", "action": "schedule_job",
                 "job_type": "ok"},
                {"command": "sim [who]", "help": "sim", "action": "schedule_job",
                 "job_type": "sim"}]
    commands += [{"command": name, "help": name, "action": "schedule_job", "job_type": name}
                 for name in ("fail", "limit", "long", "chatty", "token", "names")]
    raw = {"hpc": {"cluster": "test", "jobs": jobs, "slack": commands}}
    h = Harness(home, raw, {"test": cluster_settings(env)}, CHATOPS_TEST_TOKEN=TOKEN,
                **SERVICE_SECRETS)
    yield h
    h.stop()


TOKEN = "tok-" + uuid.uuid4().hex  # a secret the token job lists in its `env`


@pytest.fixture(scope="module")
def limit_job(harness: Harness) -> tuple[int, str]:
    """The 1-minute job, submitted first so that it runs while the other tests do."""
    response, channel = harness.chat("hpc limit")
    return response.job_id, channel


def slurm(harness: Harness) -> SlurmClient:
    return SlurmClient(harness.remote.pool.connection("test").run)


def submitted_notice(harness: Harness, channel: str, job_id: int, job_type: str) -> int:
    [note] = harness.replies(channel, 1, 30)
    match = re.fullmatch(rf"`{job_type}` \(job {job_id}\) submitted as Slurm job (\d+) on "
                         r"cluster test\.", note)
    assert match, note
    return int(match.group(1))


MAILPROG = str(Path(sys.executable).parent / "chatops-mailprog")
EFFICIENCY = r"CPU efficiency (\d+ %|unknown), memory efficiency (\d+ %|unknown) \(.+ of .+\)\."


def test_the_time_limit_job_is_submitted_first(harness: Harness,
                                               limit_job: tuple[int, str]) -> None:
    job_id, channel = limit_job
    submitted_notice(harness, channel, job_id, "hpc_limit")


@pytest.fixture(scope="module")
def completed_ok(harness: Harness) -> tuple[int, int, str]:
    """`hpc ok hello`, run to its end: (job id, Slurm job id, report)."""
    response, channel = harness.chat("hpc ok hello")
    slurm_id = submitted_notice(harness, channel, response.job_id, "hpc_ok")
    [report] = harness.replies(channel, 1, 90)
    return response.job_id, slurm_id, report


def test_a_batch_job_that_completes(harness: Harness, workdir: str,
                                    completed_ok: tuple[int, int, str]) -> None:
    job_id, slurm_id, report = completed_ok
    assert re.fullmatch(
        rf"`hpc_ok` \(job {job_id}\) completed\.\n"
        rf"Slurm job {slurm_id} on cluster test: COMPLETED, exit code 0, "
        r"elapsed 0:00:0[3-9] of 0:05:00\.\n"
        rf"{EFFICIENCY}\n"
        rf"Last lines of {workdir}/chatops-{job_id}\.out:\n"
        r"```\nbatch-ok hello\nstaged input\n```", report), report
    assert harness.queue.get(job_id).state == "succeeded"
    # the log of the chat job holds the output's tail; `logs` shows it
    response, _ = harness.chat(f"logs {job_id}")
    assert [r.text for r in response.replies][1] == "batch-ok hello\nstaged input"


def test_a_job_is_never_submitted_twice(harness: Harness,
                                        completed_ok: tuple[int, int, str]) -> None:
    done = harness.queue.get(completed_ok[0])
    record = harness.remote.batch.submission(done.id)
    assert (record.submit_state, record.slurm_state) == ("ended", "COMPLETED")
    spec = harness.config.job("hpc_ok")
    logs = job_logs(harness.settings.logs_dir, done)
    run = harness.remote.batch.start(done.id, spec, {"word": "again"}, logs)
    assert run.wait() == 255
    assert run.error == (f"was already submitted as Slurm job {record.slurm_job_id}; it is "
                         "not submitted again")
    since = datetime.fromtimestamp(record.created_at).replace(microsecond=0)
    named = [j.job.raw_id for j in slurm(harness).sacct_jobs(user="alice", start="now-1hours")
             if j.job.name == f"chatops-{done.id}" and j.job.submit_time >= since]
    assert named == [record.slurm_job_id]  # (other runs of this suite reuse the name)


def test_a_batch_job_that_fails(harness: Harness, workdir: str) -> None:
    response, channel = harness.chat("hpc fail")
    job_id = response.job_id
    slurm_id = submitted_notice(harness, channel, job_id, "hpc_fail")
    [report] = harness.replies(channel, 1, 90)
    assert re.fullmatch(
        rf"`hpc_fail` \(job {job_id}\) failed \(FAILED, exit code 3\)\.\n"
        rf"Slurm job {slurm_id} on cluster test: FAILED, exit code 3, "
        r"elapsed 0:00:0\d of 0:05:00\.\n"
        rf"{EFFICIENCY}\n"
        rf"Last lines of {workdir}/chatops-{job_id}\.out:\n```\nabout to fail\n```", report), report
    assert harness.queue.get(job_id).state == "failed"


def test_a_batch_job_gets_the_variables_its_env_lists(harness: Harness, workdir: str) -> None:
    response, channel = harness.chat("hpc token")
    submitted_notice(harness, channel, response.job_id, "hpc_token")
    [report] = harness.replies(channel, 1, 90)
    assert report.endswith(f"```\ntoken={TOKEN}\n```"), report
    script = harness.remote.pool.connection("test").exec(
        f"cat {workdir}/chatops-{response.job_id}.sh").stdout
    assert TOKEN not in script  # nor is it written into the staged script


def test_nothing_of_the_service_reaches_a_batch_job(harness: Harness) -> None:
    response, channel = harness.chat("hpc names")
    submitted_notice(harness, channel, response.job_id, "hpc_names")
    [report] = harness.replies(channel, 1, 90)
    assert report.endswith("```\nCHATOPS_TEST_TOKEN\n```"), report  # only what `env` lists


def test_a_batch_job_cancelled_from_chat(harness: Harness,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "chatops")
    response, channel = harness.chat("hpc long")
    job_id = response.job_id
    slurm_id = submitted_notice(harness, channel, job_id, "hpc_long")
    status, _ = harness.chat("status")
    assert re.search(rf"• job {job_id} `hpc_long` started .* ago\) for alice as Slurm job "
                     rf"{slurm_id} on cluster test\n", status.replies[0].text), status.replies
    client = slurm(harness)
    wait_until(lambda: [q.state for q in client.squeue([slurm_id])] == ["RUNNING"], 60,
               "Slurm to run it")
    cancel, _ = harness.chat(f"cancel {job_id}")
    assert [r.text for r in cancel.replies] == [
        f"Stopping job {job_id} (`hpc_long`); its report will follow."]
    [report] = harness.replies(channel, 1, 60)
    assert re.fullmatch(  # scancel's SIGTERM, on the batch step: not "exit code 0"
        rf"`hpc_long` \(job {job_id}\) was cancelled \(scancel of Slurm job {slurm_id}\)\.\n"
        rf"Slurm job {slurm_id} on cluster test: CANCELLED, signal 15 \(SIGTERM\), "
        rf"elapsed .+\.\n{EFFICIENCY}\n.+", report, re.S), report
    assert harness.queue.get(job_id).state == "cancelled"
    assert f"job {job_id}: cancelled, scancel of Slurm job {slurm_id} on cluster test" in (
        caplog.messages)  # not "SIGTERM sent to its process group"
    [acct] = slurm(harness).sacct_jobs([slurm_id])
    assert acct.job.state == "CANCELLED"


def test_two_users_batch_jobs_run_at_once(harness: Harness) -> None:
    """A batch type has no per-type limit: Slurm is the queue, so bob's job is submitted while
    alice's runs, and both run at once."""
    jobs = {}
    for user in ("alice", "bob"):
        response, channel = harness.chat(f"hpc sim {user}", user=user)
        assert [r.text for r in response.replies] == [], response.replies  # not "waits"
        jobs[user] = (response.job_id, submitted_notice(harness, channel, response.job_id,
                                                        "hpc_sim"), channel)
    client = slurm(harness)
    ids = [slurm_id for _, slurm_id, _ in jobs.values()]
    wait_until(lambda: [q.state for q in client.squeue(ids)] == ["RUNNING", "RUNNING"], 60,
               "both Slurm jobs to run")
    assert {harness.queue.get(job_id).state for job_id, _, _ in jobs.values()} == {"running"}
    for user, (job_id, _, channel) in jobs.items():
        harness.chat(f"cancel {job_id}", user=user)
        [report] = harness.replies(channel, 1, 60)
        assert report.startswith(f"`hpc_sim` (job {job_id}) was cancelled"), report


def test_logs_of_a_running_batch_job_show_its_output_file(harness: Harness,
                                                          workdir: str) -> None:
    """Slurm merges stderr into the job's .out (sbatch gets only --output); while the job runs
    the dispatcher copies the end of that file at every status check."""
    response, channel = harness.chat("hpc chatty")
    job_id = response.job_id
    slurm_id = submitted_notice(harness, channel, job_id, "hpc_chatty")
    out = f"{workdir}/chatops-{job_id}.out"

    def shown() -> list[str]:
        replies = [r.text for r in harness.chat(f"logs {job_id}")[0].replies]
        return replies if replies[-1] == "first line\noops" else []

    head, text = wait_until(shown, 30, "the output file's lines in `logs`")
    assert re.fullmatch(rf"Job {job_id} \(`hpc_chatty`\) is still running as Slurm job "
                        rf"{slurm_id} on cluster test; the end of {out} as of "
                        r"\d\d:\d\d:\d\d UTC:", head), head
    stderr, _ = harness.chat(f"logs {job_id} stderr")
    assert [r.text for r in stderr.replies] == [
        f"Job {job_id} (`hpc_chatty`) runs as Slurm job {slurm_id} on cluster test; Slurm "
        f"writes its stderr into the same file as its stdout ({out}): `logs {job_id}` shows "
        "both."]
    harness.chat(f"cancel {job_id}")
    harness.replies(channel, 1, 60)
    stderr, _ = harness.chat(f"logs {job_id} stderr")
    assert [r.text for r in stderr.replies][0].startswith(
        f"Job {job_id} (`hpc_chatty`) ran as Slurm job {slurm_id} on cluster test; Slurm "
        "writes its stderr into the same file")


def test_a_batch_job_that_reaches_its_time_limit(harness: Harness, workdir: str,
                                                 limit_job: tuple[int, str]) -> None:
    job_id, channel = limit_job
    [report] = harness.replies(channel, 1, 150)
    record = harness.remote.batch.submission(job_id)
    assert re.fullmatch(
        rf"`hpc_limit` \(job {job_id}\) timed out: it reached its Slurm time limit of "
        r"0:01:00\.\n"
        # the limit's SIGTERM, as Slurm records it on the batch step (0:15; now and then it
        # records 15:0 instead, a plain exit code): never "exit code 0"
        rf"Slurm job {record.slurm_job_id} on cluster test: TIMEOUT, "
        r"(signal 15 \(SIGTERM\)|no signal recorded), "
        r"elapsed 0:01:[0-4]\d of 0:01:00\.\n"  # Slurm checks limits every ≈30 s
        rf"{EFFICIENCY}\n"
        rf"Last lines of {workdir}/chatops-{job_id}\.out:\n```\nstarted\n.*```", report,
        re.S), report
    assert harness.queue.get(job_id).state == "timed_out"


def submitted_then_stopped(factory: pytest.TempPathFactory, command: str, workdir: str
                           ) -> tuple[Harness, Callable[[], Harness], int, str, int]:
    """`hpc long` submitted by a dispatcher that then stops, and a second dispatcher's harness
    to start: (first, start second, job id, channel, Slurm job id)."""
    home = factory.mktemp("handover-home")
    raw = one_job("long", batch_job(command, workdir=workdir))
    clusters = {"test": cluster_settings(cluster_env())}
    first = Harness(home, raw, clusters)
    response, channel = first.chat("hpc long")
    slurm_id = submitted_notice(first, channel, response.job_id, "hpc_long")
    first.stop()
    return first, lambda: Harness(home, raw, clusters), response.job_id, channel, slurm_id


def test_a_dispatcher_restart_hands_the_job_over_without_cancelling_or_resubmitting(
        tmp_path_factory: pytest.TempPathFactory, workdir: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "chatops")
    first, start_second, job_id, channel, slurm_id = submitted_then_stopped(
        tmp_path_factory, "sleep 15; echo slept", workdir)
    stopped_at = datetime.now().replace(microsecond=0)
    # nothing to report yet: Slurm is running it
    assert take_waiting(first.queue, "console", channel) == []
    assert first.queue.get(job_id).state == "running"
    second = start_second()
    try:
        [report] = second.replies(channel, 1, 90)  # the new dispatcher tracked it to its end
        assert re.match(rf"`hpc_long` \(job {job_id}\) completed\.\nSlurm job {slurm_id} on "
                        r"cluster test: COMPLETED, exit code 0, elapsed 0:00:1\d of 0:05:00\.",
                        report), report
        assert report.endswith("```\nslept\n```")
        assert second.queue.get(job_id).state == "succeeded"
        assert [m for m in caplog.messages if m.startswith(f"job {job_id}")
                and " started, " not in m][:3] == [
            f"job {job_id}: shutdown, Slurm job {slurm_id} on cluster test keeps running: "
            "handed over to the next dispatcher",
            f"job {job_id} (hpc_long) handed over to the next dispatcher",
            f"job {job_id} (hpc_long): tracking Slurm job {slurm_id} again (a stopping "
            "dispatcher handed it over)"]
        # Nothing was submitted again from this test's folder (other runs use other folders).
        listed = second.remote.pool.connection("test").run(
            ["squeue", "-h", "-u", "alice", "-n", f"chatops-{job_id}", "-o", "%V|%Z"], 30)
        again = [line for line in listed.stdout.splitlines()
                 if line.split("|")[1] == workdir
                 and datetime.fromisoformat(line.split("|")[0]) >= stopped_at]
        assert again == []
        assert second.remote.batch.submission(job_id).slurm_job_id == slurm_id
    finally:
        second.stop()


def test_a_cancel_asked_between_dispatchers_is_carried_out_by_the_next(
        tmp_path_factory: pytest.TempPathFactory, workdir: str) -> None:
    first, start_second, job_id, channel, slurm_id = submitted_then_stopped(
        tmp_path_factory, "sleep 300", workdir)
    status, _ = first.chat("status")  # no dispatcher is running now
    assert re.match(
        r"No dispatcher is running: .*\nStarted before the last dispatcher stopped: 1 job\n"
        rf"• job {job_id} `hpc_long` started .* as Slurm job {slurm_id} on cluster test$",
        status.replies[0].text, re.M), status.replies[0].text
    cancel, _ = first.chat(f"cancel {job_id}")
    assert [r.text for r in cancel.replies] == [
        f"No dispatcher is running, so job {job_id} (`hpc_long`) cannot be stopped now: the "
        "cancel will be carried out when one starts (`chatops run` or `chatops dispatcher`), "
        "and its report will follow then."]
    second = start_second()
    try:
        [report] = second.replies(channel, 1, 60)
        assert report.startswith(f"`hpc_long` (job {job_id}) was cancelled (scancel of Slurm "
                                 f"job {slurm_id}).\nSlurm job {slurm_id} on cluster test: "
                                 "CANCELLED"), report
        assert second.queue.get(job_id).state == "cancelled"
    finally:
        second.stop()


def test_a_mailprog_event_reports_the_end_without_waiting_for_the_next_poll(
        tmp_path_factory: pytest.TempPathFactory, workdir: str) -> None:
    """Polls back off (1 s, then half as long again each time, ±10 %): the 8th comes 44–54 s
    after the submission, the 9th 67–82 s. The job ends between them, at ≈56 s; Slurm's END
    mail, through chatops-mailprog, brings the report long before the 9th poll would."""
    env = cluster_env()
    home = tmp_path_factory.mktemp("mailwake-home")
    raw = one_job("nap", batch_job("sleep 55; echo rested", workdir=workdir, poll_seconds=600))
    h = Harness(home, raw, {"test": cluster_settings(env)})
    try:
        response, channel = h.chat("hpc nap")
        job_id = response.job_id
        slurm_id = submitted_notice(h, channel, job_id, "hpc_nap")
        client = slurm(h)
        wait_until(lambda: [j.job.state for j in client.sacct_jobs([slurm_id])] == ["COMPLETED"],
                   90, "Slurm to complete the job")
        assert take_waiting(h.queue, "console", channel) == []  # the dispatcher is in a long pause
        subject = (f"Slurm Job_id={slurm_id} Name=chatops-{job_id} Ended, Run time 00:00:55, "
                   "COMPLETED, ExitCode 0")
        slurm_env = {"SLURM_CLUSTER_NAME": "testcluster", "SLURM_JOB_ID": str(slurm_id),
                     "SLURM_JOB_NAME": f"chatops-{job_id}", "SLURM_JOB_MAIL_TYPE": "Ended",
                     "SLURM_JOB_STATE": "COMPLETED", "SLURM_JOB_USER": "alice",
                     "SLURM_JOB_EXIT_CODE2": "0:0", "SLURM_JOB_RUN_TIME": "00:00:55"}
        subprocess.run([MAILPROG, "-s", subject, "alice"], check=True, timeout=10,
                       env={**slurm_env, "CHATOPS_SPOOL_DIR": str(h.settings.spool_dir)})
        # The end notice and the report are one message (issue 13 item 8): the report comes
        # last, after the end notice only if this session had read that notice already (the
        # report then edits it; the console shows an edit as its newest text).
        wait_until(lambda: events_handled(h.queue.engine, slurm_id) == ["END"], 15,
                   "the ingest to handle the end event")
        messages = h.replies_until(channel, "`hpc_nap`", 8)
        *before, report = messages
        assert report.startswith(f"`hpc_nap` (job {job_id}) completed.\nSlurm job {slurm_id} "
                                 "on cluster test: COMPLETED, exit code 0"), report
        assert len(before) <= 1 and all(f"{slurm_id}" in m and "COMPLETED" in m
                                        for m in before), before
        assert take_waiting(h.queue, "console", channel) == []  # no second end summary
    finally:
        h.stop()


def test_staging_works_for_an_account_whose_shell_start_up_prints(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """carol's .bashrc greets: that breaks SFTP through the system's sftp-server, so files are
    staged by `cat` on an exec channel, readable by the account only."""
    env = cluster_env()
    home = tmp_path_factory.mktemp("noisy-home")
    (home / "workspace" / "hpc" / "in").mkdir(parents=True)
    (home / "workspace" / "hpc" / "in" / "data.txt").write_bytes(b"line 1\nline 2\n")
    workdir = f"{env['CHATOPS_TEST_JOBS_DIR']}/carol-{uuid.uuid4().hex[:8]}"
    raw = one_job("stage", batch_job("cat in/data.txt", workdir=workdir, stage=["in/data.txt"]))
    h = Harness(home, raw, {"test": cluster_settings(
        env, user=env["CHATOPS_TEST_SSH_NOISY_USER"])})
    try:
        response, channel = h.chat("hpc stage")
        submitted_notice(h, channel, response.job_id, "hpc_stage")
        [report] = h.replies(channel, 1, 90)
        assert report.startswith(f"`hpc_stage` (job {response.job_id}) completed."), report
        assert report.endswith("```\nline 1\nline 2\n```"), report
        modes = h.remote.pool.connection("test").run(
            ["stat", "-c", "%a %n", workdir, f"{workdir}/in/data.txt",
             f"{workdir}/chatops-{response.job_id}.sh"], 10).stdout.split("\n")
        assert [m.split()[0] for m in modes if m] == ["700", "600", "700"]
    finally:
        h.stop()


@pytest.mark.parametrize("answer, state, why", [
    (CommandResult(0, "sbatch: accepted\n", ""), "rejected",
     "sbatch answered without a job id (unexpected sbatch output: 'sbatch: accepted'); it was "
     "not retried"),
    (TimeoutError("no answer"), "unknown",
     "the answer to sbatch was lost (timed out after 30s); it may have been submitted as "
     "`chatops-{job_id}` and is not retried"),
])
def test_an_answer_without_a_job_id_is_a_failure_never_a_retry(
        harness: Harness, answer: object, state: str, why: str) -> None:
    """sbatch itself stands in for a broken one here: everything else is the real cluster."""
    who = Requester(platform="console", user="alice", channel="t-noid")
    job_id = harness.queue.enqueue("hpc_fail", {"case": state}, who, timeout=600,
                                   delay=3600).job_id
    executor = harness.dispatcher.executor_for(harness.config.job("hpc_fail"))
    connection = executor.pool.connection("test")
    calls = []

    def runner(argv: list[str], timeout: float) -> CommandResult:
        calls.append(argv[0])
        if argv[0] == "sbatch":
            if isinstance(answer, Exception):
                raise answer
            return answer
        return connection.run(argv, timeout)

    logs = JobLogs(type_folder(harness.settings.logs_dir, "hpc", "hpc_fail"), job_id)
    logs.folder.mkdir(parents=True, exist_ok=True)
    run = BatchRun(executor, job_id, harness.config.job("hpc_fail"), "exit 3", logs)
    run.client = SlurmClient(runner, timeout=30)
    run.start_thread(run.main)
    assert run.wait() == 255
    assert calls == ["sbatch"]
    why = why.format(job_id=job_id)
    assert run.error == why
    record = executor.submission(job_id)
    assert (record.submit_state, record.slurm_job_id, record.error) == (state, None, why)
    outcome, report = run.adjust_report("failed", None, None, 255)
    assert (outcome, report.text) == ("failed", f"`hpc_fail` (job {job_id}) failed: {why}.")


def test_tracking_batch_jobs_takes_no_dispatcher_slot(tmp_path_factory: pytest.TempPathFactory,
                                                      workdir: str) -> None:
    env = cluster_env()
    raw = {**one_job("long", batch_job("sleep 300", workdir=workdir)),
           "here": {"jobs": {"echo": {"run_args_template": "echo {text}",
                                      "report_stdout": True}},
                    "slack": [{"command": "echo [text]", "help": "echo",
                               "action": "schedule_job", "job_type": "echo"}]}}
    h = Harness(tmp_path_factory.mktemp("slots-home"), raw, {"test": cluster_settings(env)},
                CHATOPS_MAX_CONCURRENCY="1")
    try:
        response, channel = h.chat("hpc long")
        submitted_notice(h, channel, response.job_id, "hpc_long")
        assert h.run("here echo still served", timeout=10)[1] == "still served"
        h.chat(f"cancel {response.job_id}")
        [report] = h.replies(channel, 1, 60)
        assert report.startswith(f"`hpc_long` (job {response.job_id}) was cancelled")
    finally:
        h.stop()


def test_a_running_batch_job_shows_its_slurm_state_and_output_as_it_goes(
        tmp_path_factory: pytest.TempPathFactory, workdir: str) -> None:
    """Live progress (issue 12 item 7) of a Slurm batch job: one message, edited with the
    job's Slurm state, how long it queued and ran, and the end of its output file; one line
    when it ends; the report after it."""
    from chatops.plain_text import render_delivery

    env = cluster_env()
    home = tmp_path_factory.mktemp("progress-home")
    raw = one_job("ticks", batch_job("for i in $(seq 1 15); do echo tick $i; sleep 1; done",
                                     workdir=workdir, poll_seconds=2))
    h = Harness(home, raw, {"test": cluster_settings(env)}, CHATOPS_PROGRESS_AFTER="2",
                CHATOPS_PROGRESS_EVERY="2")
    try:
        response, channel = h.chat("hpc ticks")
        job_id = response.job_id
        seen: list[str] = []

        def reported() -> bool:
            seen.extend(render_delivery(d) for d in take_waiting(h.queue, "console", channel))
            return any(m.startswith(f"`hpc_ticks` (job {job_id}) completed.") for m in seen)

        wait_until(reported, 120, f"the report (seen: {seen})")
    finally:
        h.stop()
    running = [m for m in seen if re.match(
        rf"`hpc_ticks` \(job {job_id}\): Slurm job \d+ on cluster test: RUNNING for "
        r"\d+:\d\d:\d\d \(queued \d+:\d\d:\d\d\)\.", m)]
    assert running, seen
    assert any(re.search(r"tick \d+", m) for m in running), running  # its output, as it goes
    final = [m for m in seen if re.fullmatch(rf"`hpc_ticks` \(job {job_id}\) \w+ after "
                                             r"\d+:\d\d:\d\d\.", m)]
    assert final, seen
    assert seen.index(final[-1]) < seen.index(next(
        m for m in seen if m.startswith(f"`hpc_ticks` (job {job_id}) completed.")))
