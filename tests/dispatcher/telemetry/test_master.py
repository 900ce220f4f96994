"""The master role against the real Slurm 22.05 test cluster: job records from sacct, cluster
state from sinfo, errors envelopes when they fail, and delta coding followed through a job's
life (PENDING, RUNNING, COMPLETED) with a consumer rebuilding every state."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dispatcher.telemetry import jobs
from dispatcher.telemetry.config import parse_config
from dispatcher.telemetry.delta import IDENTITY, DeltaCoder, JobRebuilder, pertinent
from dispatcher.telemetry.envelope import Envelopes, host_name
from dispatcher.telemetry.operations import Operations
from tests.chatops.slurm.test_client_live import Cluster, cluster  # noqa: F401 - fixture
from tests.support.sonar_format import problems
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # a broker or the test cluster, and many seconds
ENVELOPES = Envelopes("master.example", host_name())


def master(tmp_path: Path, extra: str = "") -> Operations:
    config = parse_config(f"[global]\ncluster = master.example\nrole = master\n"
                          f"[jobs]\ncadence = 1m\nwindow = 1h\nuncompleted = true\n"
                          f"[cluster]\ncadence = 1m\n{extra}", tmp_path / "master.ini")
    return Operations(config, ENVELOPES)


def records_of(envelopes: list[dict], job_id: int) -> list[dict]:
    return [r for e in envelopes for r in e["data"]["attributes"].get("slurm_jobs", [])
            if r["job_id"] == job_id]


def test_job_and_cluster_envelopes_from_the_live_cluster(cluster: Cluster, tmp_path):  # noqa: F811
    job_id = cluster.submit("exit 3", "tel-exit3")
    wait_until(lambda: cluster.finished(job_id), 60, "the job in sacct")
    ops = master(tmp_path)
    envelopes = ops.run("job", time.time())
    assert [problems("job", e) for e in envelopes] == [[]] * len(envelopes)
    by_step = {r.get("job_step", ""): r for r in records_of(envelopes, job_id)}
    assert sorted(by_step) == ["", "batch"]
    job = by_step[""]
    assert (job["job_name"], job["job_state"], job["exit_code"]) == ("tel-exit3", "FAILED", 3)
    assert (job["partition"], job["nodes"], job["time_limit"]) == (
        cluster.env["CHATOPS_TEST_SLURM_PARTITION"], [cluster.env["CHATOPS_TEST_SLURM_NODE"]],
        1)  # UNLIMITED
    assert job["user_name"] == "root" and job["requested_cpus"] == 1
    assert job["requested_resources"].startswith("cpu=1,")  # from scontrol
    assert "ElapsedRaw" in job["sacct"] or job["sacct"]["AllocTRES"]
    assert by_step["batch"]["job_state"] == "FAILED"

    [state] = ops.run("cluster", time.time())
    assert problems("cluster", state) == []
    attributes = state["data"]["attributes"]
    node, partition = cluster.env["CHATOPS_TEST_SLURM_NODE"], \
        cluster.env["CHATOPS_TEST_SLURM_PARTITION"]
    assert attributes["slurm"] is True
    assert {"name": partition, "nodes": [node]} in attributes["partitions"]
    [nodes] = [n for n in attributes["nodes"] if n["names"] == [node]]
    assert nodes["states"][0] in ("IDLE", "MIXED", "ALLOCATED")


def test_sacct_and_sinfo_failing_give_errors_envelopes_then_recover(cluster: Cluster,  # noqa: F811
                                                                     tmp_path):
    """A wrapper in front of the real programs fails until a flag file exists."""
    flag = tmp_path / "slurm-is-back"
    for name in ("sacct", "sinfo"):
        wrapper = tmp_path / name
        wrapper.write_text(f"#!/bin/sh\n[ -e {flag} ] && exec /usr/bin/{name} \"$@\"\n"
                           f"echo '{name}: error: Problem talking to the database: "
                           "Connection refused' >&2\nexit 1\n")
        wrapper.chmod(0o755)
    ops = master(tmp_path, f"[programs]\nsacct-command = {tmp_path / 'sacct'}\n"
                           f"sinfo-command = {tmp_path / 'sinfo'}\n")
    [failed_jobs] = ops.run("job", time.time())
    [failed_cluster] = ops.run("cluster", time.time())
    assert problems("job", failed_jobs) == [] and problems("cluster", failed_cluster) == []
    assert failed_jobs["errors"][0]["detail"] == \
        "sacct: sacct: error: Problem talking to the database: Connection refused"
    assert failed_cluster["errors"][0]["detail"] == \
        "sinfo: sinfo: error: Problem talking to the database: Connection refused"
    assert failed_jobs["errors"][0]["cluster"] == "master.example"
    flag.touch()
    assert "data" in ops.run("job", time.time())[0]
    assert "data" in ops.run("cluster", time.time())[0]


def test_batch_size_splits_job_records_and_dump_keeps_them_whole(cluster: Cluster,  # noqa: F811
                                                                 tmp_path):
    for name in ("tel-batch-1", "tel-batch-2", "tel-batch-3"):
        last = cluster.submit("true", name)
    wait_until(lambda: cluster.finished(last), 60, "the jobs in sacct")
    dump = tmp_path / "jobs.json"
    ops = master(tmp_path, f"[jobs]\nbatch-size = 2\ndump = {dump}\n")
    envelopes = ops.run("job", time.time())
    counts = [len(e["data"]["attributes"]["slurm_jobs"]) for e in envelopes]
    assert len(envelopes) >= 3 and max(counts) == 2
    [dumped] = [json.loads(line) for line in dump.read_text().splitlines()]
    assert len(dumped["data"]["attributes"]["slurm_jobs"]) == sum(counts)


def only(records: list[dict], job_id: int) -> list[dict]:
    return [r for r in records if r["job_id"] == job_id]


def test_delta_coding_through_a_jobs_life(cluster: Cluster, tmp_path):  # noqa: F811
    """PENDING (for the whole node, behind a one-CPU blocker) -> RUNNING (the blocker ends) ->
    COMPLETED (its flag file appears). A held job would not do: sacct lists pending jobs by
    their eligible time, which a held job has not got."""
    flags = Path(cluster.env["CHATOPS_TEST_JOBS_DIR"]) / f"tel-delta-{time.time_ns()}"
    unblock, finish = flags.with_suffix(".unblock"), flags.with_suffix(".finish")
    client = cluster.client
    options = {"partition": cluster.env["CHATOPS_TEST_SLURM_PARTITION"],
               "chdir": cluster.env["CHATOPS_TEST_JOBS_DIR"], "output": "/dev/null"}
    blocker = client.sbatch(wrap=f"while [ ! -e {unblock} ]; do sleep 0.2; done", options={
        **options, "job-name": "tel-blocker"}).job_id
    wait_until(lambda: [j for j in client.squeue([blocker]) if j.state == "RUNNING"], 60,
             "the blocker to run")
    job_id = client.sbatch(wrap=f"while [ ! -e {finish} ]; do sleep 0.2; done", options={
        **options, "job-name": "tel-delta",
        "cpus-per-task": cluster.env["CHATOPS_TEST_SLURM_CPUS"]}).job_id
    ops = master(tmp_path)
    coder = DeltaCoder(full_record_every=100)
    consumer = JobRebuilder()

    def records(states: dict[str, str]) -> list[dict]:
        """The job's records once its steps are in ``states`` (step -> state); the job waits
        for the whole node, so other jobs on the shared test cluster may delay it."""
        def ready() -> list[dict] | None:
            found = only(jobs.collect(ops.slurm, 3600, True), job_id)
            seen = {r.get("job_step", ""): r["job_state"] for r in found}
            return found if seen == states else None
        return wait_until(ready, 240, f"job {job_id} in {states}")

    def one_pass(found: list[dict]) -> tuple[list[dict], list[dict]]:
        full, deltas = coder.encode(found)
        for kind, batch in (("full", full), ("delta", deltas)):
            if batch or kind == "full":
                envelope = ENVELOPES.data("job", time.time(), {"slurm_jobs": batch},
                                          [("job-records", kind)])
                assert problems("job", envelope) == []
                consumer.apply(envelope)
        for record in found:  # the consumer holds every state in full
            state = consumer.steps[(job_id, record.get("job_step", ""))]
            assert (state.record, state.partial) == (pertinent(record), False)
        return full, deltas

    try:
        pending = records({"": "PENDING"})
        full, deltas = one_pass(pending)
        assert (full, deltas) == ([pending[0]], [])  # first sight: everything
        assert {"submit_time", "user_name", "account", "partition"} <= set(full[0])
        # Still pending: nothing is sent, unless slurmctld changed something meanwhile (its
        # estimate of the start time, under load), and then only that.
        still = records({"": "PENDING"})
        changed = {k: v for k, v in still[0].items() if pending[0].get(k) != v}
        identity = {k: still[0][k] for k in ("job_id", "job_name", "job_state")}
        assert one_pass(still) == ([], [{**identity, **changed}] if changed else [])
        assert not {"submit_time", "user_name", "account", "partition"} & set(changed)
        pending = still

        unblock.touch()
        running = records({"": "RUNNING", "batch": "RUNNING"})
        full, deltas = one_pass(running)
        assert [r["job_step"] for r in full] == ["batch"]  # a new step: in full
        [delta] = deltas
        before, now = pertinent(pending[0]), pertinent(running[0])
        changed = {k for k in now if now[k] != before.get(k)}
        assert set(delta) == set(IDENTITY[:1] + IDENTITY[2:]) | changed  # no step: job line
        assert delta["job_state"] == "RUNNING" and "start_time" in delta
        assert not {"submit_time", "user_name", "account", "partition"} & set(delta)
        assert "sacct" not in delta or set(delta["sacct"]) <= {"AllocTRES"}  # rule 2

        finish.touch()
        done = records({"": "COMPLETED", "batch": "COMPLETED"})
        full, deltas = one_pass(done)
        assert full == [] and {d.get("job_step", "") for d in deltas} == {"", "batch"}
        for delta in deltas:
            assert delta["job_state"] == "COMPLETED" and "end_time" in delta
            assert delta["job_id"] == job_id and "submit_time" not in delta
        assert one_pass(done) == ([], [])
    finally:
        client.run(["scancel", str(job_id), str(blocker)])
        unblock.unlink(missing_ok=True)
        finish.unlink(missing_ok=True)

    # A consumer that starts late holds deltas as partial until a full record comes round.
    late = JobRebuilder()
    late.apply(ENVELOPES.data("job", time.time(), {"slurm_jobs": deltas},
                              [("job-records", "delta")]))
    assert all(s.partial for s in late.steps.values())
    refresher = DeltaCoder(full_record_every=3)
    assert refresher.encode(done)[0] == [pertinent(r) for r in done]
    assert refresher.encode(done) == ([], [])
    assert refresher.encode(done) == ([], [])
    full, _ = refresher.encode(done)  # the third cadence since the last full record
    assert full == [pertinent(r) for r in done]
    late.apply(ENVELOPES.data("job", time.time(), {"slurm_jobs": full},
                              [("job-records", "full")]))
    assert [s.partial for s in late.steps.values()] == [False, False]
    assert late.steps[(job_id, "")].record == pertinent(done[0])


def test_a_field_that_disappears_makes_the_record_full():
    coder = DeltaCoder(full_record_every=100)
    running = {"job_id": 7, "job_name": "x", "job_state": "RUNNING",
               "start_time": "2026-01-01T00:00:00Z", "nodes": ["c1"]}
    requeued = {"job_id": 7, "job_name": "x", "job_state": "PENDING"}  # start time unset
    assert coder.encode([running]) == ([running], [])
    assert coder.encode([requeued]) == ([requeued], [])
    assert coder.encode([]) == ([], [])  # gone from the window: forgotten
    assert coder.encode([requeued]) == ([requeued], [])  # seen again: full again


def test_the_daemons_job_envelopes_mark_full_and_delta(cluster: Cluster, tmp_path):  # noqa: F811
    job_id = cluster.submit("true", "tel-marks")
    wait_until(lambda: cluster.finished(job_id), 60, "the job in sacct")
    ops = master(tmp_path, "[jobs]\ndelta-coding = true\nfull-record-every = 5\n")
    first, second = ops.run("job", time.time()), ops.run("job", time.time())
    for envelope in first + second:
        assert problems("job", envelope) == []
    marks = [[(a["key"], a["value"]) for a in e["meta"]["attrs"]] for e in first + second]
    assert marks[0] == [("job-records", "full")] and marks[len(first)] == marks[0]
    assert all(m in ([("job-records", "full")], [("job-records", "delta")]) for m in marks)
    count = [sum(len(e["data"]["attributes"].get("slurm_jobs", [])) for e in run)
             for run in (first, second)]
    assert records_of(first, job_id) and not records_of(second, job_id)  # finished: once
    assert count[1] < count[0]
