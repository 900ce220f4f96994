"""Jobs as the person (a cluster with submit_as = "requester"), on the live test cluster.

The service logs in as chatops-agent, whose only sudo right is the fixed wrapper
(scripts/chatops-submit) as the members of group chatops-submit: chatops-alice and chatops-bob,
bound by an admin in chat to the console users alice and bob (scripts/test-cluster.sh sets the
accounts, the group, the wrapper and the sudoers rule up as DEPLOY.md says).
"""

from __future__ import annotations

import re
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatops import wakeup
from chatops.calc.submit import Attachment
from chatops.events import Requester
from chatops.slurm.client import CommandResult
from tests.support.remote import Harness, cluster_env, cluster_settings
from tests.support.require import require
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # needs the test cluster, Synapse or a browser

PEOPLE = {"alice": "chatops-alice", "bob": "chatops-bob"}
WORKDIR = f"chatops-jobs/run-{uuid.uuid4().hex[:8]}"  # in each person's home (job ids repeat)


def batch_job(command: str, **extra: object) -> dict:
    return {"run_args_template": command, "timeout": 600,
            "slurm": {"partition": "debug", "time": "5", "mem": "64M", "poll_seconds": 1,
                      "stage": ["input.txt"], "workdir": WORKDIR}, **extra}


def start(home: Path) -> Harness:
    """The service on the test cluster as chatops-agent, with alice and bob bound."""
    env = cluster_env()
    (home / "workspace" / "hpc").mkdir(parents=True, exist_ok=True)
    (home / "workspace" / "hpc" / "input.txt").write_text("staged input\n")
    jobs = {
        "whoami": {"run_args_template": "id -un; pwd", "report_stdout": True},
        "say": {"run_args_template": "echo {text}", "report_stdout": True},
        "hang": {"run_args_template": "sleep {seconds}", "timeout": 600},
        "batch": batch_job("echo batch as $(id -un); cat input.txt; sleep 4"),
        "long": batch_job("sleep 300"),
    }
    commands = [{"command": f"{name} [{arg}]" if arg else name, "help": name,
                 "action": "schedule_job", "job_type": name}
                for name, arg in (("whoami", ""), ("say", "text"), ("hang", "seconds"),
                                  ("batch", ""), ("long", ""))]
    agent_user = env.get("CHATOPS_TEST_SUBMIT_AGENT", "chatops-agent")
    require(subprocess.run(["sudo", "-l", "-U", agent_user], capture_output=True, text=True
                           ).stdout.count("chatops-submit") > 0,
            "the test cluster's submit_as accounts", "scripts/test-cluster.sh up")
    clusters = {"test": cluster_settings(env, user=agent_user, submit_as="requester",
                                         upload_path=WORKDIR)}
    runners = {"test": {"shout": {
        "program": "id -un > who.txt; tr a-z A-Z < {} > upper.dat; : {args}",
        "extensions": [".gjf"],
        "slurm": {"partition": "debug", "time": "5", "mem": "64M", "poll_seconds": 1}}}}
    h = Harness(home, {"hpc": {"cluster": "test", "jobs": jobs, "slack": commands}}, clusters,
                admins=["console:admin"], runners=runners,
                calculations={"max_result_files": 1})  # its two results: one archive
    for person, account in PEOPLE.items():
        response, _ = h.chat(f"bind console:{person} {account}", user="admin")
        assert [r.text for r in response.replies] == [
            f"console:{person} is now cluster user {account}: Slurm's notifications for that "
            "account reach them."]
    return h


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = start(tmp_path_factory.mktemp("submit-as-home"))
    yield h
    h.stop()


def agent(h: Harness, command: str) -> CommandResult:
    """A command on the login node as the service's own account (chatops-agent)."""
    return h.remote.pool.connection("test").exec(command)


def wrapper(h: Harness, account: str, *words: str) -> CommandResult:
    """What the service account may do as ``account``: the wrapper, through sudo."""
    return agent(h, f"sudo -n -u {account} -- /usr/local/libexec/chatops-submit "
                 + " ".join(words))


def local(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()


def test_a_person_without_a_cluster_account_is_refused(harness: Harness) -> None:
    response, _ = harness.chat("hpc whoami", user="dave")
    assert response.job_id is None
    assert [r.text for r in response.replies] == [
        "Not queued: cluster test runs jobs as the person who asks, and no cluster account is "
        "bound to you (console:dave): ask an admin to send `bind console:dave <your login on "
        "test>`."]


def test_remote_commands_run_as_each_person(harness: Harness) -> None:
    for person, account in PEOPLE.items():
        response, channel = harness.chat("hpc whoami", user=person)
        assert harness.replies(channel, 1, 60) == [f"{account}\n/home/{account}"]


def test_arguments_stay_words_through_sudo_and_the_wrapper(harness: Harness) -> None:
    marker = f"/tmp/chatops-pwned-{uuid.uuid4().hex[:8]}"
    hostile = f"$(touch {marker}) `touch {marker}` ; rm -rf ~ && echo <poem> | cat"
    response, channel = harness.chat(f"hpc say {hostile}", user="alice")
    assert harness.replies(channel, 1, 60) == [hostile]
    assert not local("ls", marker)
    assert local("stat", "-c", "%U %a", "/home/chatops-alice") == "chatops-alice 700"


def test_cancel_stops_a_persons_remote_job(harness: Harness) -> None:
    seconds = f"3{uuid.uuid4().int % 10**6:06d}.5"
    response, channel = harness.chat(f"hpc hang {seconds}", user="bob")
    running = ["pgrep", "-u", "chatops-bob", "-f", f"[s]leep {seconds}"]
    wait_until(lambda: local(*running), 20, "bob's remote sleep")
    cancel, _ = harness.chat(f"cancel {response.job_id}", user="bob")
    assert [r.text for r in cancel.replies] == [
        f"Stopping job {response.job_id} (`hpc_hang`); its report will follow."]
    assert harness.replies(channel, 1, 30)[0].startswith(
        f"`hpc_hang` (job {response.job_id}) was cancelled.")
    wait_until(lambda: local(*running) == "", 20, "bob's remote sleep to be gone")


@pytest.fixture(scope="module")
def batch_runs(harness: Harness) -> dict[str, tuple[int, int, str]]:
    """Alice's and Bob's `hpc batch`, run at the same time: person -> (job, Slurm job, report)."""
    asked = {person: harness.chat("hpc batch", user=person) for person in PEOPLE}
    runs = {}
    for person, (response, channel) in asked.items():
        [note] = harness.replies(channel, 1, 60)
        match = re.fullmatch(rf"`hpc_batch` \(job {response.job_id}\) submitted as Slurm job "
                             r"(\d+) on cluster test\.", note)
        assert match, note
        runs[person] = (response.job_id, int(match.group(1)), channel)
    return {person: (job_id, slurm_id, harness.replies(channel, 1, 120)[0])
            for person, (job_id, slurm_id, channel) in runs.items()}


def test_each_persons_batch_job_is_theirs_in_squeue_and_sacct(
        batch_runs: dict[str, tuple[int, int, str]]) -> None:
    for person, account in PEOPLE.items():
        job_id, slurm_id, report = batch_runs[person]
        assert report.startswith(f"`hpc_batch` (job {job_id}) completed.\n"), report
        assert report.endswith(f"Last lines of {WORKDIR}/chatops-{job_id}.out:\n```\n"
                               f"batch as {account}\nstaged input\n```"), report
        assert local("squeue", "-h", "-t", "all", "-j", str(slurm_id), "-o", "%u") == account
        record = ["sacct", "-n", "-X", "-P", "-j", str(slurm_id), "-o", "User,State"]
        wait_until(lambda want=f"{account}|COMPLETED", argv=record: local(*argv) == want, 30,
                   f"sacct's record of Slurm job {slurm_id}")


def test_staged_files_are_the_persons_alone(harness: Harness,
                                            batch_runs: dict[str, tuple[int, int, str]]) -> None:
    for person, account in PEOPLE.items():
        job_id = batch_runs[person][0]
        folder = f"/home/{account}/{WORKDIR}"
        assert local("stat", "-c", "%U %a", f"/home/{account}/chatops-jobs", folder,
                     f"{folder}/input.txt", f"{folder}/chatops-{job_id}.sh",
                     f"{folder}/chatops-{job_id}.out").splitlines() == [
            f"{account} 700", f"{account} 700", f"{account} 600", f"{account} 700",
            f"{account} 600"]
    alices = f"/home/chatops-alice/{WORKDIR}/chatops-{batch_runs['alice'][0]}.out"
    bobs = f"/home/chatops-bob/{WORKDIR}/input.txt"
    for account, other in (("chatops-bob", alices), ("chatops-alice", bobs)):
        # neither as a login of theirs, nor through what the service may do in their name
        denied = subprocess.run(["runuser", "-u", account, "--", "cat", other],
                                capture_output=True, text=True, timeout=30)
        assert (denied.returncode, denied.stderr) == (1, f"cat: {other}: Permission denied\n")
        result = wrapper(harness, account, "read", other)
        assert (result.returncode, result.stderr) == (1, f"cat: {other}: Permission denied\n")


def test_a_calculation_runs_as_the_person_and_its_results_come_back(harness: Harness) -> None:
    response, channel = harness.chat("run", user="bob",
                                     attachment=Attachment("water.gjf", 6, lambda: b"water\n"))
    job_id = response.job_id
    assert harness.replies(channel, 1, 60)[0].startswith(
        f"`water.gjf` submitted as calculation {job_id} (Slurm job ")
    [report] = harness.replies(channel, 1, 120)
    archive = f"calculation-{job_id}-results.tar.gz"
    assert (f"2 result files (more than 1) come as one archive, `{archive}`.") in report, report
    results = Path(harness.settings.home) / "calcs" / "results" / str(job_id)
    with tarfile.open(results / archive) as tar:
        assert {name: tar.extractfile(name).read() for name in tar.getnames()} == {
            "upper.dat": b"WATER\n", "who.txt": b"chatops-bob\n"}
    folder = f"/home/chatops-bob/{WORKDIR}/console-bob/{job_id}"
    assert local("stat", "-c", "%U %a", folder, f"{folder}/water.gjf").splitlines() == [
        "chatops-bob 700", "chatops-bob 600"]


def test_cancel_of_a_persons_batch_job_is_their_scancel(harness: Harness) -> None:
    response, channel = harness.chat("hpc long", user="alice")
    [note] = harness.replies(channel, 1, 60)
    slurm_id = int(re.search(r"Slurm job (\d+)", note).group(1))
    assert local("squeue", "-h", "-t", "all", "-j", str(slurm_id), "-o", "%u") == "chatops-alice"
    cancel, _ = harness.chat(f"cancel {response.job_id}", user="alice")
    assert cancel.replies[0].text.startswith(f"Stopping job {response.job_id} (`hpc_long`)")
    [report] = harness.replies(channel, 1, 90)
    assert report.startswith(f"`hpc_long` (job {response.job_id}) was cancelled (scancel of "
                             f"Slurm job {slurm_id})."), report


def test_the_wrapper_does_its_verbs_and_nothing_else(harness: Harness) -> None:
    refused = wrapper(harness, "chatops-alice", "bash", "-c", "id")
    assert (refused.returncode, refused.stderr) == (
        64, "chatops-submit: 'bash' is not allowed (sbatch, squeue, sacct, scancel, put, "
        "unpack, read, tail, list, pack, remove, signal, job)\n")
    up = wrapper(harness, "chatops-alice", "put", "../chatops-bob/planted")
    assert (up.returncode, up.stderr) == (
        64, "chatops-submit: '..' is not allowed in a path: '../chatops-bob/planted'\n")
    for account, command in (("root", "/usr/local/libexec/chatops-submit squeue"),
                             ("alice", "/usr/local/libexec/chatops-submit squeue"),
                             ("chatops-alice", "/bin/sh -c id")):
        result = agent(harness, f"sudo -n -u {account} -- {command}")
        assert (result.returncode, result.stderr) == (1, "sudo: a password is required\n")


@pytest.mark.parametrize("job_type", ["hpc_whoami", "hpc_batch"])
def test_a_job_of_someone_unbound_since_they_asked_fails_saying_why(harness: Harness,
                                                                     job_type: str) -> None:
    channel = f"t-{uuid.uuid4().hex[:10]}"
    erin = Requester(platform="console", user="erin", channel=channel, user_name="erin",
                     is_direct=True, is_guest=False)
    job_id = harness.queue.enqueue(job_type, {}, erin, timeout=60).job_id  # queued while bound
    wakeup.notify(harness.settings.run_dir, "dispatcher")
    assert harness.replies(channel, 1, 60) == [
        f"`{job_type}` (job {job_id}) failed: cluster test runs jobs as the person who asks, "
        "and no cluster account is bound to you (console:erin): ask an admin to send `bind "
        "console:erin <your login on test>`."]


def test_after_a_restart_a_persons_batch_job_is_still_theirs(tmp_path: Path) -> None:
    first = start(tmp_path / "home")
    response, channel = first.chat("hpc long", user="bob")
    [note] = first.replies(channel, 1, 60)
    slurm_id = int(re.search(r"Slurm job (\d+)", note).group(1))
    first.stop()  # while Slurm runs it: handed over
    second = start(tmp_path / "home")
    try:
        assert second.remote.batch.submission(response.job_id).run_as == "chatops-bob"
        cancel, _ = second.chat(f"cancel {response.job_id}", user="bob")
        assert cancel.replies[0].text.startswith(f"Stopping job {response.job_id}")
        [report] = second.replies(channel, 1, 90)
        assert report.startswith(f"`hpc_long` (job {response.job_id}) was cancelled (scancel "
                                 f"of Slurm job {slurm_id})."), report  # scancel as bob
        assert local("squeue", "-h", "-t", "all", "-j", str(slurm_id), "-o",
                     "%u %T") == "chatops-bob CANCELLED"
    finally:
        second.stop()
