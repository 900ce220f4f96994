"""The dispatcher reads the telemetry daemons' topics back (telemetry 'feeds'): a monitor whose
source is Kafka reports a drained node with no SSH to the cluster at all, and a chat-submitted
batch job is reported as soon as a job record says it ended. The real broker (Tansu), a real
`chatops telemetry` master on the real test cluster, the real dispatcher."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.dispatcher.telemetry.test_kafka import daemons, ini, kafka_broker  # noqa: F401
from tests.dispatcher.test_batch import batch_job, one_job, slurm, submitted_notice
from tests.dispatcher.test_monitor import Console, closed_port, scontrol  # (node: conftest)
from tests.support.remote import Harness, cluster_env, cluster_settings
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # a broker, a daemon, the test cluster


def master(daemons, tmp_path: Path, broker: str, cluster: str):  # noqa: F811
    return daemons(tmp_path / "master", ini(
        tmp_path, "master", cluster, "master", broker,
        "[cluster]\ncadence = 1s\n[jobs]\ncadence = 1s\nwindow = 10m\nuncompleted = true\n"
        "delta-coding = true\n")).start()


def test_a_monitor_fed_by_kafka_reports_a_drained_node_and_its_return(
        kafka_broker, tmp_path, daemons, node):  # noqa: F811
    cluster = f"feed{uuid.uuid4().hex[:6]}.example"
    kafka_broker.create_topics(f"{cluster}.cluster", f"{cluster}.job")
    master(daemons, tmp_path, kafka_broker.address, cluster)
    channel = f"mon-{uuid.uuid4().hex[:8]}"
    unreachable = cluster_settings(cluster_env(), port=closed_port())  # no sinfo over SSH
    harness = Harness(tmp_path / "home", {}, {"testcluster": unreachable},
                      monitors={"testcluster": {"cadence": "1s", "source": "kafka",
                                                "targets": [f"console:{channel}"]}},
                      telemetry={"broker": kafka_broker.address, "clusters": [cluster],
                                 "feeds": {cluster: "testcluster"}})
    console = Console(harness, channel)
    try:
        board = console.wait_for(r"testcluster: (ONLINE|DEGRADED) for", 60)  # not OFFLINE
        assert "PARTITION  IDLE  ALLOC  MIXED  OTHER  TOTAL" in board
        scontrol(f"nodename={node}", "state=drain", "reason=disk replace")
        drained = console.wait_for(r"^🟡 testcluster is DEGRADED", 60)  # (not the board)
        assert drained.startswith("🟡 testcluster is DEGRADED (online for ")
        assert f"• {node} drain" in drained
        scontrol(f"nodename={node}", "state=resume")
        back = console.wait_for(r"^🟢 testcluster is ONLINE", 60)
        assert back.startswith("🟢 testcluster is ONLINE (degraded for ")
    finally:
        harness.stop()


def test_a_job_record_reports_a_batch_job_without_waiting_for_the_next_poll(
        kafka_broker, tmp_path, daemons):  # noqa: F811
    """Polls back off to a 600 s pause; the job ends ≈56 s after it was submitted, between two
    polls; the master's job record (every second) brings the report at once."""
    cluster = f"feed{uuid.uuid4().hex[:6]}.example"
    kafka_broker.create_topics(f"{cluster}.cluster", f"{cluster}.job")
    master(daemons, tmp_path, kafka_broker.address, cluster)
    env = cluster_env()
    workdir = f"{env['CHATOPS_TEST_JOBS_DIR']}/feed-{uuid.uuid4().hex[:8]}"
    raw = one_job("nap", batch_job("sleep 55; echo rested", workdir=workdir, poll_seconds=600))
    h = Harness(tmp_path / "home", raw, {"test": cluster_settings(env)},
                telemetry={"broker": kafka_broker.address, "clusters": [cluster],
                           "feeds": {cluster: "test"}})
    try:
        response, channel = h.chat("hpc nap")
        job_id = response.job_id
        slurm_id = submitted_notice(h, channel, job_id, "hpc_nap")
        client = slurm(h)
        wait_until(lambda: [j.job.state for j in client.sacct_jobs([slurm_id])] == ["COMPLETED"],
                   90, "Slurm to complete the job")
        [report] = h.replies(channel, 1, 10)
        assert report.startswith(f"`hpc_nap` (job {job_id}) completed.\nSlurm job {slurm_id} "
                                 "on cluster test: COMPLETED, exit code 0"), report
    finally:
        h.stop()
