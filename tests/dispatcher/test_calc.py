"""Calculations from the console, end to end on the live test cluster (as alice, over SSH): a
file is staged, run by a runner whose program writes two result files, and both come back."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatops.calc import store
from chatops.calc.submit import Attachment
from tests.support.remote import Harness, cluster_env, cluster_settings

pytestmark = pytest.mark.slow  # needs the test cluster

INPUT = b"water\nH 0 0 0\nO 0 0 1\nH 0 1 0\n"
PROGRAM = ("echo args: {args}; wc -l < {} > lines.txt; tr a-z A-Z < {} > upper.dat; "
           "echo scratch > scratch.tmp")
EFFICIENCY = r"CPU efficiency (\d+ %|unknown), memory efficiency (\d+ %|unknown) \(.+ of .+\)\."


def attachment(name: str = "water.gjf", data: bytes = INPUT) -> Attachment:
    return Attachment(name, len(data), lambda: data)


@pytest.fixture(scope="module")
def upload() -> str:
    return f"{cluster_env()['CHATOPS_TEST_JOBS_DIR']}/calc-{uuid.uuid4().hex[:8]}"


def runners(**extra: dict) -> dict:
    return {"test": {"shout": {
        "program": PROGRAM, "extensions": [".gjf"], "description": "counts and shouts",
        "allowed_args": ["{}", "-v", {"regex": r"--n=\d"}],
        "slurm": {"partition": "debug", "time": "5", "mem": "64M", "poll_seconds": 2},
        **extra}}}


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, upload: str) -> Iterator[Harness]:
    env = cluster_env()
    h = Harness(tmp_path_factory.mktemp("calc-home"), {},
                {"test": cluster_settings(env, upload_path=upload)}, runners=runners())
    yield h
    h.stop()


def submitted(h: Harness, channel: str, job_id: int, name: str = "water.gjf") -> int:
    [note] = h.replies(channel, 1, 30)
    match = re.fullmatch(rf"`{re.escape(name)}` submitted as calculation {job_id} \(Slurm job "
                         r"(\d+) on cluster test\)\.", note)
    assert match, note
    return int(match.group(1))


def test_a_file_runs_and_its_two_result_files_come_back(harness: Harness, upload: str) -> None:
    response, channel = harness.chat("run --n=3", attachment=attachment())
    job_id = response.job_id
    [reply] = [r.text for r in response.replies]
    assert re.fullmatch(rf"Calculation {job_id}: `water.gjf` is queued for runner `shout` on "
                        r"cluster test \(1 of 5 calculations used this month; the next comes "
                        r"back on \d{4}-\d\d-01 00:00:00 UTC\)\.", reply), reply
    slurm_id = submitted(harness, channel, job_id)
    [report] = harness.replies(channel, 1, 90)
    results = Path(harness.settings.home) / "calcs" / "results" / str(job_id)
    assert re.fullmatch(
        rf"Calculation {job_id} \(`water.gjf`\), runner `shout` on cluster test: completed\.\n"
        rf"Slurm job {slurm_id}: COMPLETED, exit code 0, elapsed 0:00:0\d of 0:05:00\.\n"
        rf"{EFFICIENCY}\n"
        r"(Hint: .+\n)*"
        r"Result files: `lines.txt`, `upper.dat`\.\n"
        rf"\[file lines.txt: {results}/lines.txt\]\n"
        rf"\[file upper.dat: {results}/upper.dat\]", report), report
    assert (results / "lines.txt").read_text() == "4\n"
    assert (results / "upper.dat").read_bytes() == INPUT.upper()
    assert harness.queue.get(job_id).state == "succeeded"
    # a calculation is a job: its log holds the program's output, `logs` shows it
    logs, _ = harness.chat(f"logs {job_id}")
    assert [r.text for r in logs.replies][1] == "args: --n=3 water.gjf"
    folder = f"{upload}/console-alice/{job_id}"
    modes = harness.remote.pool.connection("test").run(
        ["stat", "-c", "%a %n", folder, f"{folder}/water.gjf"], 10).stdout.split("\n")
    assert [m.split()[0] for m in modes if m] == ["700", "600"]
    assert not list((Path(harness.settings.home) / "calcs" / "inputs").iterdir())  # staged


def test_a_calculation_sbatch_refuses_is_refunded_and_leaves_nothing(
        tmp_path_factory: pytest.TempPathFactory, upload: str) -> None:
    env = cluster_env()
    h = Harness(tmp_path_factory.mktemp("calc-refused"), {},
                {"test": cluster_settings(env, upload_path=upload)},
                runners=runners(slurm={"partition": "nope", "time": "5"}))
    try:
        response, channel = h.chat("run", attachment=attachment("a.gjf"))
        job_id = response.job_id
        [report] = h.replies(channel, 1, 60)
        assert re.fullmatch(rf"Calculation {job_id} \(`a.gjf`\) was not submitted: sbatch "
                            r"refused it: .*[Ii]nvalid partition.*\.\n"
                            r"It does not count against your quota\.", report), report
        assert store.quota(h.queue.engine, h.config.calc, "console:alice").used == 0
        listed = h.remote.pool.connection("test").run(
            ["ls", f"{upload}/console-alice"], 10).stdout.split()
        assert str(job_id) not in listed
        assert not list((Path(h.settings.home) / "calcs" / "inputs").iterdir())
    finally:
        h.stop()


def test_a_calculation_that_cannot_be_staged_is_not_submitted_and_is_refunded(
        tmp_path: Path) -> None:
    env = cluster_env()  # staging and sbatch share one exec channel: sbatch must not run
    h = Harness(tmp_path / "home", {}, {"test": cluster_settings(env, upload_path="/proc/no")},
                runners=runners())
    try:
        response, channel = h.chat("run", attachment=attachment("c.gjf"))
        [report] = h.replies(channel, 1, 60)
        assert re.fullmatch(
            rf"Calculation {response.job_id} \(`c.gjf`\) was not submitted: could not upload "
            rf"its files to cluster test: cannot write into /proc/no/console-alice/"
            rf"{response.job_id}: mkdir: cannot create directory .+\.\n"
            r"It does not count against your quota\.", report), report
        assert store.quota(h.queue.engine, h.config.calc, "console:alice").used == 0
        assert h.queue.slurm_submission(response.job_id).slurm_job_id is None
    finally:
        h.stop()


def test_a_cluster_that_is_down_refunds_the_calculation(tmp_path: Path) -> None:
    env = cluster_env()
    h = Harness(tmp_path / "home", {}, {"test": cluster_settings(env, port=1)},
                runners=runners())
    try:
        response, channel = h.chat("run", attachment=attachment("b.gjf"))
        [report] = h.replies(channel, 1, 60)
        assert report == (f"Calculation {response.job_id} (`b.gjf`) was not submitted: cluster "
                          "test unreachable: connection refused.\n"
                          "It does not count against your quota.")
        assert store.quota(h.queue.engine, h.config.calc, "console:alice").used == 0
        assert h.queue.get(response.job_id).state == "failed"
    finally:
        h.stop()


def test_a_calculation_is_a_job_status_and_cancel_work_on_it(tmp_path: Path,
                                                              upload: str) -> None:
    env = cluster_env()
    h = Harness(tmp_path / "home", {}, {"test": cluster_settings(env, upload_path=upload)},
                runners=runners(program="sleep 300"))
    try:
        response, channel = h.chat("run", attachment=attachment("long.gjf"))
        job_id = response.job_id
        slurm_id = submitted(h, channel, job_id, "long.gjf")
        status, _ = h.chat("status")
        assert re.search(rf"• job {job_id} `run_test.shout` started .* for alice as Slurm job "
                         rf"{slurm_id} on cluster test\n", status.replies[0].text), status.replies
        cancel, _ = h.chat(f"cancel {job_id}")
        assert [r.text for r in cancel.replies] == [
            f"Stopping job {job_id} (`run_test.shout`); its report will follow."]
        [report] = h.replies(channel, 1, 60)
        assert report.startswith(f"Calculation {job_id} (`long.gjf`), runner `shout` on cluster "
                                 f"test: was cancelled (scancel of Slurm job {slurm_id}).\n"
                                 f"Slurm job {slurm_id}: CANCELLED"), report
        assert h.queue.get(job_id).state == "cancelled"
        assert store.quota(h.queue.engine, h.config.calc, "console:alice").used == 1  # it ran
    finally:
        h.stop()


def test_a_dispatcher_restart_still_brings_the_results_once(tmp_path: Path, upload: str) -> None:
    env = cluster_env()
    clusters = {"test": cluster_settings(env, upload_path=upload)}
    slow = runners(program=f"sleep 8; {PROGRAM}")
    first = Harness(tmp_path / "home", {}, clusters, runners=slow)
    response, channel = first.chat("run", attachment=attachment())
    job_id = response.job_id
    slurm_id = submitted(first, channel, job_id)
    first.stop()  # while Slurm runs it
    assert first.queue.get(job_id).state == "running"
    second = Harness(tmp_path / "home", {}, clusters, runners=slow)
    try:
        [report] = second.replies(channel, 1, 90)
        assert report.startswith(f"Calculation {job_id} (`water.gjf`), runner `shout` on "
                                 f"cluster test: completed.\nSlurm job {slurm_id}: COMPLETED"), (
            report)
        assert "Result files: `lines.txt`, `upper.dat`." in report
        assert second.remote.calc.submission(job_id).slurm_job_id == slurm_id
        assert second.queue.finish(job_id, "succeeded", payload={"kind": "notice"}) == 0  # once
    finally:
        second.stop()


@pytest.mark.parametrize("program, calculations, expected", [
    # 12 result files, more than max_result_files: one archive of them
    ("for i in $(seq -w 1 12); do echo $i > part$i.txt; done", {"max_result_files": 10},
     "12 result files (more than 10) come as one archive, `calculation-{id}-results.tar.gz`."),
    # one file over the per-file cap stays on the cluster, the other comes back
    ("head -c 300000 /dev/zero > big.dat; echo small > small.txt", {"max_result_bytes": 100000},
     "`big.dat` (293 KiB) is larger than the 98 KiB a result file may be; it stays on cluster "
     "test in {folder}."),
    # the program removed its own folder: nothing to fetch, and the report says so
    ('echo x > a.txt; d="$PWD"; cd / && rm -rf "$d"', {},
     "The results folder {folder} on cluster test is gone: no result files could be fetched."),
])
def test_result_limits(tmp_path: Path, upload: str, program: str, calculations: dict,
                       expected: str) -> None:
    env = cluster_env()
    upload = f"{upload}/{uuid.uuid4().hex[:8]}"  # each case's calculation 1 has its own folder
    h = Harness(tmp_path / "home", {}, {"test": cluster_settings(env, upload_path=upload)},
                runners=runners(program=program + "; : {args}"), calculations=calculations)
    try:
        response, channel = h.chat("run", attachment=attachment("limits.gjf"))
        job_id = response.job_id
        submitted(h, channel, job_id, "limits.gjf")
        [report] = h.replies(channel, 1, 90)
        folder = f"{upload}/console-alice/{job_id}"
        assert expected.format(id=job_id, folder=folder) in report.split("\n"), report
        results = Path(h.settings.home) / "calcs" / "results" / str(job_id)
        sent = sorted(p.name for p in results.iterdir()) if results.exists() else []
        if "archive" in expected:
            import tarfile

            assert sent == [f"calculation-{job_id}-results.tar.gz"]
            with tarfile.open(results / sent[0]) as archive:
                assert sorted(archive.getnames()) == [f"part{i:02d}.txt" for i in range(1, 13)]
        elif "big.dat" in expected:
            assert sent == ["small.txt"]
            assert "Result files: `small.txt`." in report
        else:
            assert sent == []
    finally:
        h.stop()
