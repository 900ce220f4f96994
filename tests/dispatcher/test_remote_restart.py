"""Remote and Slurm batch jobs across a dispatcher that is SIGKILLed, with the real CLI.

`chatops dispatcher` runs as a process against the live test cluster (as alice). A remote job
of a killed dispatcher must not go on running on the cluster; a Slurm batch job must go on
(Slurm runs it), be tracked by the next dispatcher and reach its thread — never submitted twice.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import CHATOPS, Chatops, spine_env
from tests.support.remote import cluster_env, cluster_settings
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # needs the test cluster, Synapse or a browser


class ChatWaiter:
    """`chatops chat` in the background; its lines as they come."""

    def __init__(self, chatops: Chatops, text: str):
        self.process = subprocess.Popen([CHATOPS, "chat", text, "--user", "alice"],
                                        env=chatops.env, stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def until(self, pattern: str, timeout: float) -> re.Match:
        def check() -> re.Match | None:
            while not self.lines.empty():
                self.seen.append(self.lines.get())
            return re.search(pattern, "\n".join(self.seen), re.S)

        return wait_until(check, timeout, f"{pattern!r} from `chatops chat`")


@pytest.fixture
def cluster() -> dict[str, str]:
    return cluster_env()


@pytest.fixture
def workdir(cluster: dict[str, str]) -> str:
    return f"{cluster['CHATOPS_TEST_JOBS_DIR']}/restart-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def chatops(tmp_path: Path, cluster: dict[str, str], workdir: str) -> Iterator[Chatops]:
    slurm = {"partition": "debug", "time": "5", "mem": "64M", "poll_seconds": 2,
             "workdir": workdir}
    raw = {"hpc": {"cluster": "test", "jobs": {
        "hangs": {"run_args_template": "sleep {seconds}", "timeout": 600},
        "short": {"run_args_template": "echo started; sleep 12; echo finished", "timeout": 600,
                  "slurm": slurm}},
        "slack": [{"command": "hangs [seconds]", "help": "hangs", "action": "schedule_job",
                   "job_type": "hangs"},
                  {"command": "short", "help": "short", "action": "schedule_job",
                   "job_type": "short"}]}}
    config = tmp_path / "job_configs.py"
    clusters = {"test": cluster_settings(cluster)}
    config.write_text(f"raw_config = {raw!r}\nclusters = {clusters!r}\n")
    home = tmp_path / "home"
    home.mkdir()
    runner = Chatops(home, spine_env(home, CHATOPS_CONFIG=str(config)))
    runner("db", "upgrade", check=True)
    yield runner
    runner.stop_all()


def on_cluster(cluster: dict[str, str], command: str) -> str:
    """Run ``command`` on the test cluster as alice with OpenSSH (not the code under test)."""
    return subprocess.run(
        ["ssh", "-i", cluster["CHATOPS_TEST_SSH_KEY"], "-p", cluster["CHATOPS_TEST_SSH_PORT"],
         "-o", f"UserKnownHostsFile={cluster['CHATOPS_TEST_SSH_KNOWN_HOSTS']}",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
         f"{cluster['CHATOPS_TEST_SSH_USER']}@{cluster['CHATOPS_TEST_SSH_HOST']}", command],
        capture_output=True, text=True, timeout=30, check=True).stdout


def kill_dispatcher(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def test_a_killed_dispatchers_remote_job_stops_on_the_cluster(chatops: Chatops,
                                                              cluster: dict[str, str]) -> None:
    dispatcher = chatops.start_dispatcher()
    seconds = f"3{uuid.uuid4().int % 10**6:06d}.5"
    running = f"pgrep -f '[s]leep {seconds}' || true"
    waiter = ChatWaiter(chatops, f"hpc hangs {seconds}")
    wait_until(lambda: on_cluster(cluster, running), 20, "the remote sleep to start")
    kill_dispatcher(dispatcher)
    wait_until(lambda: on_cluster(cluster, running) == "", 15,
             "the remote sleep to stop with its dispatcher")
    chatops.start_dispatcher()
    waiter.until(r"`hpc_hangs` \(job \d+\) was lost: the dispatcher running it stopped "
                 r"unexpectedly; it was not re-run\.", 30)


def test_a_batch_job_outlives_a_killed_dispatcher_and_is_reported(
        chatops: Chatops, cluster: dict[str, str], workdir: str) -> None:
    dispatcher = chatops.start_dispatcher()
    waiter = ChatWaiter(chatops, "hpc short")
    found = waiter.until(r"`hpc_short` \(job (\d+)\) submitted as Slurm job (\d+) on cluster "
                         r"test\.", 30)
    job_id, slurm_id = found.group(1), found.group(2)
    kill_dispatcher(dispatcher)
    chatops.start_dispatcher()
    # the whole report: its output block closed (lines arrive one at a time)
    report = waiter.until(r"`hpc_short` \(job \d+\) completed\..*```\n.*```", 120).string
    assert re.search(rf"Slurm job {slurm_id} on cluster test: COMPLETED, exit code 0, "
                     r"elapsed 0:00:1\d of 0:05:00\.", report), report
    assert re.search(r"```\nstarted\nfinished\n```", report), report
    assert waiter.process.wait(10) == 0
    assert "state: succeeded" in chatops("jobs", "show", job_id).stdout
    # submitted once, by the first dispatcher (job names repeat across tests: match the folder)
    submitted = on_cluster(cluster, f"squeue -h -t all -n chatops-{job_id} -o '%i %Z'")
    assert [line.split()[0] for line in submitted.splitlines()
            if line.split()[1] == workdir] == [slurm_id]
