"""The Slurm client against the real cluster of ``scripts/test-cluster.sh up`` (local runner).

Skipped when the cluster is not up, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from chatops.slurm.acct import AcctJob
from chatops.slurm.client import SlurmClient, SlurmError, local_runner
from tests.support.require import require
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # needs the test cluster, Synapse or a browser

T = TypeVar("T")
ME = pwd.getpwuid(os.getuid()).pw_name
STATE_DIR = Path(os.environ.get("CHATOPS_TEST_CLUSTER_DIR", "/tmp/chatops-test-cluster"))


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            env[key.strip()] = value.strip()
    return env






@dataclass
class Cluster:
    client: SlurmClient
    env: dict[str, str]

    def submit(self, command: str, name: str) -> int:
        options = {
            "job-name": name,
            "partition": self.env["CHATOPS_TEST_SLURM_PARTITION"],
            "chdir": self.env["CHATOPS_TEST_JOBS_DIR"],
            "output": "/dev/null",
        }
        return self.client.sbatch(wrap=command, options=options).job_id

    def finished(self, job_id: int) -> AcctJob | None:
        """The sacct record once the job is in a final state there and the record has settled."""
        jobs = self.client.sacct_jobs([job_id])
        done = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}
        if jobs and jobs[0].job.state in done and not jobs[0].job.provisional:
            return jobs[0]
        return None


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    env_file = STATE_DIR / "cluster.env"
    if not env_file.exists():
        require(False, f"the Slurm test cluster ({env_file})", "scripts/test-cluster.sh up")
    client = SlurmClient(local_runner, timeout=20)
    try:
        client.sinfo()
    except SlurmError as exc:
        require(False, f"the Slurm test cluster ({exc})", "scripts/test-cluster.sh up")
    return Cluster(client, read_env_file(env_file))


def test_sinfo_shows_the_node_up(cluster: Cluster) -> None:
    nodes = cluster.client.sinfo()
    (node,) = [n for n in nodes if n.name == cluster.env["CHATOPS_TEST_SLURM_NODE"]]
    assert node.state in ("idle", "mixed"), node
    assert node.available
    assert node.cpus == int(cluster.env["CHATOPS_TEST_SLURM_CPUS"])
    assert cluster.env["CHATOPS_TEST_SLURM_PARTITION"] in node.partitions


def test_sbatch_squeue_and_scancel_a_running_job(cluster: Cluster) -> None:
    client = cluster.client
    job_id = cluster.submit("sleep 60", "live-cancel")
    assert job_id > 0
    try:
        (queued,) = client.squeue([job_id])
        assert (queued.job_id, queued.name, queued.user) == (str(job_id), "live-cancel", ME)
        assert queued.state in ("PENDING", "RUNNING")
        running = wait_until(
            lambda: [j for j in client.squeue([job_id]) if j.state == "RUNNING"], 15, "RUNNING"
        )[0]
        assert running.nodes == (cluster.env["CHATOPS_TEST_SLURM_NODE"],)
        assert any(j.job_id == str(job_id) for j in client.squeue(states=["RUNNING"]))
        (info,) = client.show_job(job_id)
        assert (info.job_id, info.state, info.name) == (job_id, "RUNNING", "live-cancel")
    finally:
        client.scancel(job_id)
    record = wait_until(lambda: cluster.finished(job_id), 30, "the cancelled job in sacct")
    assert (record.job.state, record.job.cancelled_by) == ("CANCELLED", os.getuid())
    assert client.squeue([job_id])[0].state == "CANCELLED"  # still known to slurmctld (MinJobAge)


def test_a_job_exiting_3_is_failed_with_exit_3(cluster: Cluster) -> None:
    job_id = cluster.submit("exit 3", "live-exit3")
    record = wait_until(lambda: cluster.finished(job_id), 30, "the failed job in sacct")
    assert (record.job.state, record.job.exit_code, record.job.signal) == ("FAILED", 3, 0)
    assert record.job.name == "live-exit3"
    batch = record.step("batch")
    assert batch is not None and batch.exit_code == 3
    (info,) = cluster.client.show_job(job_id)
    assert (info.state, info.exit_code, info.reason) == ("FAILED", 3, "NonZeroExitCode")


def test_errors_from_slurm(cluster: Cluster) -> None:
    client = cluster.client
    assert client.squeue([999999]) == []
    assert client.show_job(999999) == []
    with pytest.raises(SlurmError, match="Invalid job id"):
        client.scancel(999999)
    with pytest.raises(SlurmError, match="(?i)invalid partition"):
        client.sbatch(wrap="true", options={"partition": "no-such-partition"})
