"""The node role: real processes sampled with psutil, the node described, GPUs when the vendor
tool is there; every envelope checked against Sonar's format."""

from __future__ import annotations

import os
import platform
import pwd
import signal
import subprocess
import time
from collections.abc import Iterator

import psutil
import pytest

from dispatcher.telemetry import gpu, sysinfo
from dispatcher.telemetry.config import SampleSettings, parse_config
from dispatcher.telemetry.envelope import Envelopes, host_name
from dispatcher.telemetry.operations import Operations
from dispatcher.telemetry.sample import Sampler
from tests.chatops.slurm.test_client_live import Cluster, cluster  # noqa: F401 - fixture
from tests.support.sonar_format import problems
from tests.support.wait import wait_until

NOBODY = pwd.getpwnam("nobody")
ENVELOPES = Envelopes("node.example", host_name())


class Spawned:
    """Processes started for a test, all stopped at its end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def __call__(self, *argv: str, user: str | None = "nobody", **env: str) -> int:
        proc = subprocess.Popen(argv, user=user, env={"PATH": os.environ["PATH"], **env},
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        wait_until(lambda: psutil.Process(proc.pid).name() != "python3" or None, 10,
                 f"{argv[0]} to start")
        return proc.pid

    def stop(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)


@pytest.fixture
def spawn() -> Iterator[Spawned]:
    spawned = Spawned()
    yield spawned
    spawned.stop()


def sample(sampler: Sampler) -> dict:
    envelope = ENVELOPES.data("sample", time.time(),
                              {"node": ENVELOPES.node, **sampler.attributes(time.time())})
    assert problems("sample", envelope) == []
    return envelope


def processes(envelope: dict) -> dict[int, tuple[dict, dict]]:
    """pid -> (job, process record)."""
    return {p["pid"]: (job, p) for job in envelope["data"]["attributes"].get("jobs", [])
            for p in job["processes"]}


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@pytest.mark.slow
def test_sample_reports_real_processes_grouped_into_jobs(spawn):
    sleeper = spawn("sleep", "300")
    in_job = spawn("sleep", "301", SLURM_JOB_ID="4242")
    busy = spawn("sh", "-c", "while :; do :; done")
    root_sleeper = spawn("sleep", "302", user=None)
    sampler = Sampler(SampleSettings())
    wait_until(lambda: cpu_seconds(busy) >= 1.2 or None, 60, "the busy loop to use 1.2 s of CPU")
    first = processes(sample(sampler))
    used = cpu_seconds(busy)
    wait_until(lambda: cpu_seconds(busy) >= used + 0.3 or None, 60, "more CPU for the busy loop")
    envelope = sample(sampler)
    seen = processes(envelope)

    job, record = seen[sleeper]
    assert (job["user"], job["job"], job["epoch"]) == ("nobody", os.getpgid(sleeper),
                                                       sampler.epoch)
    assert (record["cmd"], record["ppid"]) == ("sleep", os.getpid())
    assert record["resident_memory"] > 0 and record["virtual_memory"] > 0

    job, record = seen[in_job]
    assert (job["job"], job["user"], "epoch" in job) == (4242, "nobody", False)  # Slurm: 0

    job, record = seen[busy]
    assert record["cmd"] == "sh" and record["cpu_time"] >= 1
    assert record["cpu_util"] > 0 and record["cpu_avg"] > 0
    assert record["cpu_time"] >= first[busy][1]["cpu_time"]

    assert root_sleeper not in seen  # exclude-system-jobs (default): uid below 1000
    system = envelope["data"]["attributes"]["system"]
    assert len(system["cpus"]) == psutil.cpu_count()
    assert system["load1"] == pytest.approx(os.getloadavg()[0], abs=2)
    assert system["existing_entities"] >= len(psutil.pids())
    assert "gpus" not in system  # no nvidia-smi or rocm-smi on this machine


def test_sample_filters(spawn):
    sleeper = spawn("sleep", "300")
    busy = spawn("sh", "-c", "while :; do :; done")
    root_sleeper = spawn("sleep", "302", user=None)
    everyone = processes(sample(Sampler(SampleSettings(exclude_system_jobs=False))))
    assert {sleeper, busy, root_sleeper} <= set(everyone)
    assert everyone[root_sleeper][0]["user"] == "root"
    no_nobody = processes(sample(Sampler(SampleSettings(exclude_users=("nobody", "bob")))))
    assert sleeper not in no_nobody and busy not in no_nobody
    no_sleep = processes(sample(Sampler(SampleSettings(exclude_commands=("sle",)))))
    assert sleeper not in no_sleep and busy in no_sleep
    old_only = sample(Sampler(SampleSettings(min_cpu_time=parse_config(
        "[global]\ncluster=c\nrole=node\n[sample]\nmin-cpu-time=1h\n").sample.min_cpu_time)))
    assert sleeper not in processes(old_only) and busy not in processes(old_only)
    no_load = sample(Sampler(SampleSettings(load=False)))
    assert "system" not in no_load["data"]["attributes"]


def test_rollup_merges_a_jobs_identical_leaf_processes(spawn):
    parent = spawn("sh", "-c", "sleep 300 & sleep 300 & sleep 300 & wait", SLURM_JOB_ID="5151")
    wait_until(lambda: len(psutil.Process(parent).children()) == 3 or None, 10, "3 sleeps")
    seen = sample(Sampler(SampleSettings(rollup=True)))
    [job] = [j for j in seen["data"]["attributes"]["jobs"] if j["job"] == 5151]
    by_cmd = {p["cmd"]: p for p in job["processes"]}
    assert sorted(by_cmd) == ["sh", "sleep"] and len(job["processes"]) == 2
    assert by_cmd["sleep"]["rolledup"] == 2 and by_cmd["sleep"]["ppid"] == parent
    assert by_cmd["sleep"]["pid"] > psutil.Process(parent).children()[0].pid  # synthetic
    assert by_cmd["sh"]["pid"] == parent and "rolledup" not in by_cmd["sh"]


@pytest.mark.slow  # the test cluster
def test_a_slurm_jobs_processes_carry_its_job_id(cluster: Cluster):  # noqa: F811
    job_id = cluster.submit("sleep 120", "tel-sample")
    try:
        def job_sleep() -> int | None:
            for p in psutil.process_iter(["name", "environ"]):
                if p.info["name"] == "sleep" and (p.info["environ"] or {}).get(
                        "SLURM_JOB_ID") == str(job_id):
                    return p.pid
            return None
        pid = wait_until(job_sleep, 60, f"job {job_id}'s sleep to run")
        seen = processes(sample(Sampler(SampleSettings(exclude_system_jobs=False))))
        job, record = seen[pid]
        assert (job["job"], "epoch" in job, record["cmd"]) == (job_id, False, "sleep")
    finally:
        cluster.client.scancel(job_id)


def test_sysinfo_describes_this_node():
    attributes = sysinfo.attributes()
    envelope = ENVELOPES.data("sysinfo", time.time(), {"node": ENVELOPES.node, **attributes})
    assert problems("sysinfo", envelope) == []
    uname = os.uname()
    assert (attributes["os_name"], attributes["os_release"], attributes["architecture"]) == (
        uname.sysname, uname.release, uname.machine)
    assert attributes["memory"] == psutil.virtual_memory().total // 1024
    assert attributes["sockets"] * attributes["cores_per_socket"] * \
        attributes["threads_per_core"] == psutil.cpu_count()
    assert "cards" not in attributes and platform.machine() == uname.machine


def test_topology_commands_are_base64_in_sysinfo(tmp_path):
    attributes = sysinfo.attributes(topo_text="/bin/echo node topology")
    assert attributes["topo_text"] == "bm9kZSB0b3BvbG9neQo="  # "node topology\n"
    assert "topo_svg" not in sysinfo.attributes(topo_svg=str(tmp_path / "missing"))


NVIDIA_SMI = """#!/bin/sh
# A stand-in for NVIDIA's tool, answering the queries the daemon makes as nvidia-smi does.
case "$1" in
--query-gpu=index,uuid,pci.bus_id*)
  echo "0, GPU-4a1f6e3c-1f0b-7c2d-9e8f-0a1b2c3d4e5f, 00000000:3B:00.0, NVIDIA A100-SXM4-40GB, \
535.104.05, 92.00.45.00.03, 40960, 400.00, 400.00, 100.00, 1410, 1215"
  echo "1, GPU-5b2f7e4d-2f1c-8d3e-af90-1b2c3d4e5f60, 00000000:86:00.0, NVIDIA A100-SXM4-40GB, \
535.104.05, 92.00.45.00.03, 40960, 400.00, 400.00, 100.00, 1410, 1215";;
--query-gpu=index,uuid,fan.speed*)
  echo "0, GPU-4a1f6e3c-1f0b-7c2d-9e8f-0a1b2c3d4e5f, [N/A], P0, 2048, 87, 40, 61, 250.12, \
400.00, 1410, 1215, Default"
  echo "1, GPU-5b2f7e4d-2f1c-8d3e-af90-1b2c3d4e5f60, [N/A], P8, 0, 0, 0, 33, 52.70, 400.00, \
210, 405, Default";;
--query-compute-apps=*)
  echo "PID, GPU-4a1f6e3c-1f0b-7c2d-9e8f-0a1b2c3d4e5f, 1000";;
*) exit 9;;
esac
"""


def test_gpus_from_nvidia_smi(spawn, tmp_path, monkeypatch):
    busy = spawn("sh", "-c", "while :; do :; done")
    tool = tmp_path / "nvidia-smi"
    tool.write_text(NVIDIA_SMI.replace("PID", str(busy)))
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    gpus = gpu.probe()
    assert isinstance(gpus, gpu.NvidiaSmi)
    info = sysinfo.attributes(gpus)
    assert problems("sysinfo", ENVELOPES.data("sysinfo", time.time(),
                                              {"node": "n1", **info})) == []
    assert info["cards"][1] == {
        "index": 1, "manufacturer": "NVIDIA", "uuid": "GPU-5b2f7e4d-2f1c-8d3e-af90-1b2c3d4e5f60",
        "address": "00000000:86:00.0", "model": "NVIDIA A100-SXM4-40GB",
        "driver": "535.104.05", "firmware": "92.00.45.00.03", "memory": 40960 * 1024,
        "power_limit": 400, "max_power_limit": 400, "min_power_limit": 100,
        "max_ce_clock": 1410, "max_memory_clock": 1215}
    envelope = sample(Sampler(SampleSettings(), gpus))
    cards = envelope["data"]["attributes"]["system"]["gpus"]
    assert cards[0] == {"index": 0, "uuid": "GPU-4a1f6e3c-1f0b-7c2d-9e8f-0a1b2c3d4e5f",
                        "performance_state": 2, "compute_mode": "Default", "memory": 2097152,
                        "ce_util": 87, "memory_util": 40, "temperature": 61, "power": 250,
                        "power_limit": 400, "ce_clock": 1410, "memory_clock": 1215}
    assert cards[1]["performance_state"] == 10 and "memory" not in cards[1]
    _, record = processes(envelope)[busy]
    assert record["gpus"] == [{"index": 0, "uuid": "GPU-4a1f6e3c-1f0b-7c2d-9e8f-0a1b2c3d4e5f",
                               "gpu_memory": 1024000}]


def test_a_failing_gpu_tool_gives_no_gpu_data(tmp_path, monkeypatch):
    tool = tmp_path / "nvidia-smi"
    tool.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    config = parse_config("[global]\ncluster=node.example\nrole=node\n[sample]\n"
                          "cadence=1m\n[sysinfo]\ncadence=1h\n")
    ops = Operations(config, ENVELOPES)
    [envelope] = ops.run("sample", time.time())
    assert problems("sample", envelope) == []
    assert "gpus" not in envelope["data"]["attributes"]["system"]
    [info] = ops.run("sysinfo", time.time())
    assert problems("sysinfo", info) == [] and "cards" not in info["data"]["attributes"]
