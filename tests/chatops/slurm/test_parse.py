"""Parsing of real Slurm 22.05 output (tests/fixtures/slurm) into what users would see.

Fixtures: ``sacct_*``, ``scontrol_*``, ``squeue_pipe_*``, ``sinfo_*``/``node_*`` were captured
from a single-node 22.05.8 cluster (the reference harness); ``live_*`` from this project's
``scripts/test-cluster.sh`` cluster with the client's own field lists. Expected numbers are
worked out by hand in the comments.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from chatops.slurm.acct import group_jobs, job_efficiency, parse_sacct
from chatops.slurm.client import (
    CommandResult,
    SlurmClient,
    SlurmError,
    local_runner,
    parse_scontrol_jobs,
    parse_sinfo_json,
    parse_squeue,
)
from chatops.slurm.parse import (
    expand_nodelist,
    json_number,
    parse_duration,
    parse_exit_code,
    parse_keyvalues,
    parse_mem_request,
    parse_size,
    parse_state,
    parse_tres,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "slurm"
MiB = 1024**2


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def sacct_job(name: str, job_id: str | None = None):
    jobs = group_jobs(parse_sacct(fixture(name)))
    return jobs[0] if job_id is None else next(j for j in jobs if j.job.job_id == job_id)


# ------------------------------------------------------------------------------ values
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1-02:03:04", 93784),
        ("02:03", 123),  # MM:SS
        ("00:00.002", 0.002),  # sacct TotalCPU, MM:SS.mmm
        ("00:04.153", 4.153),
        ("00:01:07", 67),
        ("1:02:03", 3723),
        ("0:03", 3),  # squeue %M
        ("5:00", 300),  # squeue %l for --time=5
        ("365-00:00:00", 365 * 86400),
        ("2-12", 2 * 86400 + 12 * 3600),  # D-HH
        ("10", 600),  # bare minutes
        ("UNLIMITED", math.inf),
        ("INFINITE", math.inf),
        ("Partition_Limit", None),
        ("INVALID", None),
        ("N/A", None),
        ("", None),
        ("soon", None),
        ("1-xx:00:00", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    if seconds is None:
        assert parse_duration(text) is None
    else:
        assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("256M", 256 * MiB),
        ("3036K", 3036 * 1024),
        ("1.5G", 1536 * MiB),
        ("94.50M", 99090432),  # 94.5 * 1048576
        ("322076K", 329805824),
        ("0", 0),
        ("2T", 2 * 1024**4),
        ("", None),
        ("lots", None),
    ],
)
def test_parse_size(text: str, size: int | None) -> None:
    assert parse_size(text) == size


def test_parse_size_default_unit_and_request_suffixes() -> None:
    assert parse_size("512") == 512 * MiB
    assert parse_size("512", default_unit="K") == 512 * 1024
    assert parse_mem_request("50Mn") == (50 * MiB, "node")
    assert parse_mem_request("4Gc") == (4096 * MiB, "cpu")
    assert parse_mem_request("256M") == (256 * MiB, None)  # 21.08+: the job's total
    assert parse_mem_request("") == (None, None)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("node[01-04,07]", ["node01", "node02", "node03", "node04", "node07"]),
        ("a[1-2],b3", ["a1", "a2", "b3"]),
        ("vm", ["vm"]),
        ("n[8-10]", ["n8", "n9", "n10"]),
        ("gpu[098-101]", ["gpu098", "gpu099", "gpu100", "gpu101"]),
        ("r[1-2]n[01-02]", ["r1n01", "r1n02", "r2n01", "r2n02"]),
        ("c[1,3],d[01-02],e", ["c1", "c3", "d01", "d02", "e"]),
        ("(null)", []),
        ("None assigned", []),
        ("", []),
    ],
)
def test_expand_nodelist(text: str, names: list[str]) -> None:
    assert expand_nodelist(text) == names


def test_parse_tres() -> None:
    assert parse_tres("cpu=1,mem=256M,node=1,billing=1") == {
        "cpu": 1,
        "mem": 256 * MiB,
        "node": 1,
        "billing": 1,
    }
    assert parse_tres("cpu=2,mem=1.5G,gres/gpu=2,billing=2.5") == {
        "cpu": 2,
        "mem": 1536 * MiB,
        "gres/gpu": 2,
        "billing": 2.5,
    }
    assert parse_tres("mem=512") == {"mem": 512 * MiB}  # bare TRES memory is MiB
    assert parse_tres("") == {}
    assert parse_tres("(null)") == {}


def test_exit_codes_states_and_json_numbers() -> None:
    assert parse_exit_code("3:0") == (3, 0)
    assert parse_exit_code("0:15") == (0, 15)
    assert parse_exit_code("") == (None, None)
    assert parse_state("CANCELLED by 0") == ("CANCELLED", 0)
    assert parse_state("CANCELLED by 1001") == ("CANCELLED", 1001)
    assert parse_state("COMPLETED") == ("COMPLETED", None)
    assert parse_state("RUNNING+") == ("RUNNING", None)
    assert json_number({"set": True, "infinite": False, "number": 5}) == 5
    assert json_number({"set": False, "infinite": False, "number": 0}) is None
    assert json_number({"set": True, "infinite": True, "number": 0}) == math.inf
    assert json_number(7) == 7


def test_parse_keyvalues_keeps_values_with_spaces_and_equals() -> None:
    f = parse_keyvalues("JobId=5 JobName=my job Command=/bin/run --opt=1 x TRES=cpu=1,mem=1G")
    assert f == {
        "JobId": "5",
        "JobName": "my job",
        "Command": "/bin/run --opt=1 x",
        "TRES": "cpu=1,mem=1G",
    }


# ------------------------------------------------------------------------------ sacct
def test_sacct_completed_job_with_batch_step() -> None:
    job = sacct_job("sacct_completed_9.psv")
    assert (job.job.job_id, job.job.name, job.job.user) == ("9", "ok_job", "root")
    assert (job.job.state, job.job.exit_code, job.job.signal) == ("COMPLETED", 0, 0)
    assert job.job.elapsed == 4
    assert job.job.total_cpu == pytest.approx(4.153)
    assert job.job.alloc_cpus == 1  # the NCPUS column
    assert job.job.req_mem_bytes == 256 * MiB
    assert job.job.time_limit == math.inf
    assert job.job.max_rss_bytes is None  # MaxRSS is only on steps
    batch = job.step("batch")
    assert batch is not None and batch.job_id == "9"
    assert batch.max_rss_bytes == 99090432  # 94.50M
    assert str(job.job.start_time) == "2026-11-24 00:08:14"


def test_sacct_failed_exit_3() -> None:
    job = sacct_job("sacct_failed_11.psv")
    assert (job.job.state, job.job.exit_code, job.job.signal) == ("FAILED", 3, 0)
    assert job.job.elapsed == 1


def test_sacct_json_exit_code_is_wrong_in_22_05() -> None:
    """Why the client reads `sacct -P`: 22.05's JSON says SUCCESS/0 for the job that exited 3."""
    data = json.loads(fixture("sacct_failed_11.json"))["jobs"][0]
    assert data["state"]["current"] == "FAILED"
    assert data["exit_code"] == {"status": "SUCCESS", "return_code": 0}
    assert sacct_job("sacct_failed_11.psv").job.exit_code == 3


def test_sacct_timeout() -> None:
    job = sacct_job("sacct_timeout_10.psv")
    assert (job.job.state, job.job.exit_code) == ("TIMEOUT", 0)
    assert (job.job.elapsed, job.job.time_limit) == (67, 60)
    batch = job.step("batch")
    assert batch is not None
    assert (batch.state, batch.signal) == ("CANCELLED", 15)
    assert batch.max_rss_bytes == 3036 * 1024


def test_sacct_oom_kill_and_cancelled_by() -> None:
    job = sacct_job("sacct_oom_13.psv")
    assert (job.job.state, job.job.exit_code, job.job.signal) == ("FAILED", 0, 9)
    assert job.job.req_mem_bytes == 50 * MiB
    batch = job.step("batch")
    assert batch is not None
    assert (batch.state, batch.cancelled_by) == ("CANCELLED", 0)
    assert batch.max_rss_bytes == 322076 * 1024
    # 322076K used of 50M (51200K) requested
    assert job_efficiency(job).memory_efficiency == pytest.approx(322076 / 51200)


def test_sacct_cancelled_jobs() -> None:
    running = sacct_job("sacct_cancelled_running_18.psv")
    assert (running.job.state, running.job.cancelled_by) == ("CANCELLED", 0)
    pending = sacct_job("sacct_cancelled_pending_17.psv")
    assert (pending.job.state, pending.job.cancelled_by, pending.steps) == ("CANCELLED", 0, [])
    assert pending.job.time_limit is None  # Partition_Limit
    eff = job_efficiency(pending)
    assert (eff.cpu_efficiency, eff.memory_efficiency, eff.walltime_use) == (None, None, None)


def test_sacct_provisional_record_right_after_the_end() -> None:
    """For ~2 s after a short job ends, slurmdbd shows a stand-in record (captured live)."""
    early = sacct_job("live_sacct_provisional.psv")
    assert early.job.provisional
    assert (early.job.state, early.job.exit_code, early.job.name) == ("FAILED", 3, "allocation")
    assert (early.job.req_mem_bytes, early.job.time_limit, early.job.qos) == (None, None, "Unknown")
    late = sacct_job("live_sacct_settled.psv")
    assert not late.job.provisional
    assert (late.job.name, late.job.partition, late.job.req_mem_bytes) == (
        "probe-y",
        "debug",
        256 * MiB,
    )
    assert not any(s.provisional for s in late.steps + early.steps)


def test_sacct_array_tasks() -> None:
    jobs = group_jobs(parse_sacct(fixture("sacct_array_tasks_14.psv")))
    assert [j.job.job_id for j in jobs] == ["14_1", "14_2", "14_3"]
    assert [(j.job.array_job_id, j.job.array_task) for j in jobs] == [
        (14, "1"),
        (14, "2"),
        (14, "3"),
    ]
    assert [(j.job.state, j.job.exit_code) for j in jobs] == [
        ("COMPLETED", 0),
        ("FAILED", 5),
        ("COMPLETED", 0),
    ]
    assert all(len(j.steps) == 1 and j.steps[0].step == "batch" for j in jobs)


def test_sacct_client_fields_from_the_live_cluster() -> None:
    records = parse_sacct(fixture("live_sacct_fields.psv"))
    jobs = {j.job.job_id: j for j in group_jobs(records)}
    # --mem-per-cpu=100M -c 3: since 21.08 ReqMem is already the total
    assert (jobs["4"].job.alloc_cpus, jobs["4"].job.req_mem_bytes) == (3, 300 * MiB)
    # array task ids vs raw job ids: 7_3 is job 7 itself, 7_1 got id 9
    assert (jobs["7_3"].job.raw_id, jobs["7_1"].job.raw_id) == (7, 9)
    assert jobs["7_2"].job.exit_code == 2
    assert (jobs["6"].job.qos, jobs["6"].job.partition, jobs["6"].job.nodes) == (
        "normal",
        "debug",
        ("vm",),
    )
    steps = jobs["8"].steps
    assert [(s.step, s.ntasks, s.name) for s in steps] == [("batch", 1, "batch"), ("0", 2, "sleep")]


# ------------------------------------------------------------------------------ efficiency
def test_efficiency_of_a_cpu_burning_job() -> None:
    eff = job_efficiency(sacct_job("live_sacct_fields.psv", "6"))
    # 4.128 s of CPU in 4 s on 2 CPUs; 219608K peak of 512M
    assert eff.cpu_efficiency == pytest.approx(4.128 / 8)
    assert eff.memory_efficiency == pytest.approx(219608 / (512 * 1024))
    assert eff.memory_used_bytes == 219608 * 1024
    assert eff.walltime_use is None  # no time limit


def test_efficiency_with_several_steps_takes_the_largest() -> None:
    eff = job_efficiency(parse_sacct(fixture("live_sacct_fields.psv")))  # first job: 4
    assert eff.cpu_efficiency == pytest.approx(0.003 / 3)
    eff = job_efficiency(sacct_job("live_sacct_fields.psv", "8"))
    assert eff.cpu_efficiency == pytest.approx(0.016 / (3 * 2))
    assert eff.memory_used_bytes == 10716 * 1024  # batch (10716K) > step 0 (1696K)


def test_efficiency_timeout_uses_walltime() -> None:
    eff = job_efficiency(sacct_job("sacct_timeout_10.psv"))
    assert eff.walltime_use == pytest.approx(67 / 60)
    assert eff.cpu_efficiency == pytest.approx(0.002 / 67)


MULTINODE = """\
JobID|State|ExitCode|Elapsed|TotalCPU|AllocCPUS|ReqMem|MaxRSS|NNodes|NodeList|Timelimit
100|COMPLETED|0:0|01:00:00|06:00:00|8|{req}||4|node[01-04]|02:00:00
100.batch|COMPLETED|0:0|01:00:00|00:10:00|2||1G|1|node01|
100.0|COMPLETED|0:0|00:59:00|05:50:00|8||3G|4|node[01-04]|
"""


@pytest.mark.parametrize("req", ["4Gn", "2Gc", "16G"])  # per node x 4, per CPU x 8, total
def test_efficiency_multinode(req: str) -> None:
    records = parse_sacct(MULTINODE.format(req=req))
    assert records[0].nodes == ("node01", "node02", "node03", "node04")
    eff = job_efficiency(records)
    assert eff.memory_requested_bytes == 16 * 1024 * MiB
    # step 0 peaks at 3G on each of its 4 nodes: 12G of 16G; the batch step's 1G x 1 is smaller
    assert eff.memory_used_bytes == 12 * 1024 * MiB
    assert eff.memory_efficiency == pytest.approx(0.75)
    assert eff.cpu_efficiency == pytest.approx(6 * 3600 / (3600 * 8))  # 0.75
    assert eff.walltime_use == pytest.approx(0.5)


def test_efficiency_tolerates_missing_data() -> None:
    assert job_efficiency([]).cpu_efficiency is None
    records = parse_sacct("JobID|State\n5|RUNNING\n")
    eff = job_efficiency(records)
    assert (eff.cpu_efficiency, eff.memory_efficiency, eff.walltime_use) == (None, None, None)
    only_steps = parse_sacct("JobID|MaxRSS|Elapsed\n5.batch|10M|00:00:10\n")
    assert job_efficiency(only_steps).memory_efficiency is None


# ------------------------------------------------------------------------------ scontrol
def test_scontrol_show_job_completed() -> None:
    (job,) = parse_scontrol_jobs(fixture("scontrol_show_job_completed_9.txt"))
    assert (job.job_id, job.name, job.state, job.reason) == (9, "ok_job", "COMPLETED", "None")
    assert (job.user, job.uid, job.account, job.qos) == ("root", 0, "root", "normal")
    assert (job.exit_code, job.signal, job.run_time, job.time_limit) == (0, 0, 4, math.inf)
    assert job.nodes == ("vm",) and (job.num_nodes, job.num_cpus) == (1, 1)
    assert job.tres == {"cpu": 1, "mem": 256 * MiB, "node": 1, "billing": 1}
    assert job.stdout == "/tmp/slurm-harness/jobs/slurm-9.out"
    assert (job.mail_user, job.mail_type) == (
        "someone",
        "INVALID_DEPEND,BEGIN,END,FAIL,REQUEUE,STAGE_OUT",
    )
    assert job.fields["AllocNode:Sid"] == "localhost:2690"
    assert job.display_id == "9"


def test_scontrol_show_job_array_and_running() -> None:
    tasks = parse_scontrol_jobs(fixture("scontrol_show_job_array_tasks_14.txt"))
    assert [(t.display_id, t.job_id, t.state, t.exit_code) for t in tasks] == [
        ("14_3", 14, "COMPLETED", 0),
        ("14_2", 22, "FAILED", 5),
        ("14_1", 21, "COMPLETED", 0),
    ]
    assert tasks[1].reason == "NonZeroExitCode"
    (running,) = parse_scontrol_jobs(fixture("scontrol_show_job_running_timeout_10.txt"))
    assert (running.state, running.run_time, running.time_limit) == ("RUNNING", 38, 60)
    assert running.end_time is not None and running.end_time.minute == 9


def test_scontrol_one_line_format() -> None:
    multi = fixture("scontrol_show_job_completed_9.txt")
    one_line = " ".join(line.strip() for line in multi.splitlines() if line.strip())
    assert parse_scontrol_jobs(one_line) == parse_scontrol_jobs(multi)


# ------------------------------------------------------------------------------ squeue
def test_squeue_pipe_capture_with_header() -> None:
    jobs = parse_squeue(fixture("squeue_pipe_busy.txt"), fmt="%i|%j|%u|%T|%M|%l|%D|%R")
    assert len(jobs) == 12
    by_id = {j.job_id: j for j in jobs}
    arr = by_id["14_[1-3]"]
    assert (arr.array_job_id, arr.array_task, arr.state, arr.reason) == (
        14,
        "1-3",
        "PENDING",
        "Priority",
    )
    assert by_id["17"].reason == "JobHeldUser"
    assert by_id["20"].reason == "Dependency"
    assert (by_id["9"].state, by_id["9"].nodes, by_id["9"].reason) == ("RUNNING", ("vm",), "")
    assert (by_id["10"].time_limit, by_id["11"].time_limit) == (60, math.inf)
    (dep,) = parse_squeue(
        fixture("squeue_pipe_dep_never_satisfied.txt"), fmt="%i|%j|%u|%T|%M|%l|%D|%R"
    )
    assert dep.reason == "DependencyNeverSatisfied"


def test_squeue_client_format_from_the_live_cluster() -> None:
    held, running = parse_squeue(fixture("live_squeue_format.txt"))
    assert held.name == "held|pipe name"  # a | in the job name stays in the name
    assert (held.job_id, held.raw_id, held.array_job_id, held.array_task) == (
        "16_[1-3]",
        16,
        16,
        "1-3",
    )
    assert (held.state, held.reason, held.nodes, held.start_time) == (
        "PENDING",
        "JobHeldUser",
        (),
        None,
    )
    assert (running.job_id, running.state, running.num_cpus, running.nodes) == (
        "17",
        "RUNNING",
        2,
        ("vm",),
    )
    assert (running.elapsed, running.time_limit, running.qos, running.account) == (
        3,
        300,
        "normal",
        "root",
    )
    assert str(running.submit_time) == "2026-11-24 01:52:19"


# ------------------------------------------------------------------------------ sinfo
def sinfo_text_state(name: str) -> str:
    """The %T column of the `sinfo -N -h -o '%N|%T|...'` line captured next to the JSON."""
    lines = fixture(name).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("### sinfo -N -h"))
    return lines[header + 1].split("|")[1]


@pytest.mark.parametrize(
    ("snapshot", "state", "flags", "available"),
    [
        ("0_idle", "idle", (), True),
        ("1_down", "down", (), False),
        ("3_draining", "mixed", ("DRAIN",), False),
        ("4_drained", "idle", ("DRAIN",), False),
        ("6_down_with_job", "down", (), False),
        ("8_slurmd_killed_manualrun", "down", ("NOT_RESPONDING",), False),
    ],
)
def test_sinfo_json_node_states(snapshot: str, state: str, flags: tuple, available: bool) -> None:
    (node,) = parse_sinfo_json(fixture(f"sinfo_{snapshot}.json"))
    assert (node.name, node.state, node.flags, node.available) == ("vm", state, flags, available)
    # what users see matches sinfo's own %T text for the same moment: draining, drained, down*
    assert node.display_state == sinfo_text_state(f"node_{snapshot}.txt")


def test_sinfo_json_numbers_and_reason() -> None:
    (idle,) = parse_sinfo_json(fixture("sinfo_0_idle.json"))
    assert (idle.cpus, idle.alloc_cpus, idle.real_memory_mb, idle.free_memory_mb) == (
        2,
        0,
        24105,
        22613,
    )
    assert idle.cpu_load == pytest.approx(0.64)
    assert (idle.partitions, idle.reason, idle.reason_time) == (("debug",), "", None)
    (down,) = parse_sinfo_json(fixture("sinfo_1_down.json"))
    assert (down.reason, down.reason_user) == ("test outage", "root")
    assert down.reason_time is not None
    (mixed,) = parse_sinfo_json(fixture("live_sinfo_mixed.json"))
    assert (mixed.state, mixed.cpus, mixed.alloc_cpus, mixed.alloc_memory_mb) == (
        "mixed",
        8,
        2,
        512,
    )


def test_sinfo_json_23_shape() -> None:
    """23.02+: the state is a list and many numbers are {"set", "infinite", "number"} objects."""
    data = {
        "nodes": [
            {
                "name": "n01",
                "state": ["IDLE", "DRAIN"],
                "cpus": 64,
                "alloc_cpus": 0,
                "real_memory": 256000,
                "free_mem": {"set": True, "infinite": False, "number": 250000},
                "cpu_load": 150,
                "partitions": ["cpu", "debug"],
                "reason": "bad dimm",
                "reason_set_by_user": "root",
                "reason_changed_at": {"set": True, "infinite": False, "number": 1700000000},
            },
            {
                "name": "n02",
                "state": ["MIXED"],
                "cpus": 64,
                "alloc_cpus": 3,
                "free_mem": {"set": False, "infinite": False, "number": 0},
            },
        ]
    }
    data["nodes"].append({"name": "n03", "state": "down+drain+not_responding"})  # "+" joined
    n01, n02, n03 = parse_sinfo_json(json.dumps(data))
    assert (n03.state, n03.flags, n03.display_state) == (
        "down",
        ("DRAIN", "NOT_RESPONDING"),
        "drained*",
    )
    assert (n01.state, n01.flags, n01.display_state, n01.available) == (
        "idle",
        ("DRAIN",),
        "drained",
        False,
    )
    assert (n01.free_memory_mb, n01.cpu_load, n01.partitions) == (250000, 1.5, ("cpu", "debug"))
    assert n01.reason_time is not None and n01.reason_time.year == 2023
    assert (n02.display_state, n02.available, n02.free_memory_mb) == ("mixed", True, None)


# ------------------------------------------------------------------------ client, faked runner
class FakeRunner:
    def __init__(self, *results: CommandResult):
        self.results = list(results)
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], timeout: float) -> CommandResult:
        self.calls.append(argv)
        return self.results.pop(0)


def test_client_builds_argv_and_handles_unknown_jobs() -> None:
    run = FakeRunner(
        CommandResult(0, fixture("live_squeue_format.txt"), ""),
        CommandResult(1, "", "slurm_load_jobs error: Invalid job id specified\n"),
        CommandResult(1, "", "slurm_load_jobs error: Invalid job id specified\n"),
    )
    client = SlurmClient(run)
    assert len(client.squeue([16, 17])) == 2
    assert run.calls[0][-4:] == ["-j", "16,17", "-t", "all"]  # finished jobs too
    assert client.squeue([99999]) == []
    assert client.show_job(99999) == []
    assert run.calls[2] == ["scontrol", "-o", "show", "job", "99999"]


def test_client_sbatch_and_scancel() -> None:
    run = FakeRunner(
        CommandResult(0, "42;testcluster\n", ""),
        CommandResult(0, "", "scancel: Terminating job 42\n"),
        CommandResult(
            0, "", "scancel: error: Kill job error on job id 7: Invalid job id specified\n"
        ),
        CommandResult(
            1, "", "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
        ),
    )
    client = SlurmClient(run)
    sub = client.sbatch(wrap="exit 3", options={"job-name": "x y", "hold": True, "time": None})
    assert (sub.job_id, sub.cluster) == (42, "testcluster")
    assert run.calls[0] == ["sbatch", "--parsable", "--job-name=x y", "--hold", "--wrap=exit 3"]
    client.scancel(42)
    with pytest.raises(SlurmError, match="Invalid job id"):
        client.scancel(7)
    with pytest.raises(SlurmError, match="Invalid partition") as err:
        client.sbatch("/tmp/job.sh", options={"partition": "nope"})
    assert err.value.returncode == 1
    with pytest.raises(ValueError):
        client.sbatch("/tmp/job.sh", options={"wrap=x --hold": True})


def test_runner_timeouts_and_missing_programs() -> None:
    def slow(argv: list[str], timeout: float) -> CommandResult:
        raise TimeoutError

    with pytest.raises(SlurmError, match="timed out"):
        SlurmClient(slow, timeout=0.5).sinfo()
    assert local_runner(["/nonexistent/sinfo"], 5).returncode == 127
    with pytest.raises(TimeoutError):
        local_runner(["sleep", "5"], 0.2)
    res = local_runner(["sh", "-c", "echo out; echo err >&2; exit 3"], 5)
    assert res == CommandResult(3, "out\n", "err\n")
