"""The hints and end wording of a finished Slurm job, from real ``sacct -P`` records.

``sacct_failed_in_limit_1``, ``sacct_idle_4cpus_2`` and ``sacct_idle_1cpu_3`` were captured on
the test cluster (Slurm 22.05.8) as alice: ``sbatch --time=10 --mem=64M`` of ``exit 3``, of
``sleep 4`` with ``-c 4`` and with ``-c 1``, then ``sacct -P -j ID -o <SACCT_FIELDS>``. The
others are the harness's captures (tests/fixtures/slurm).
"""

from __future__ import annotations

from pathlib import Path

from chatops.notify.config import load_notify_config
from chatops.notify.render import title
from chatops.notify.stats import hints
from chatops.slurm.acct import AcctJob, group_jobs, job_efficiency, parse_sacct
from chatops.slurm.events import parse_event
from chatops.texts import acct_ending

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "slurm"
CFG = load_notify_config({"qos": {"short": 3600, "long": 86400}})


def job(name: str) -> AcctJob:
    [found] = group_jobs(parse_sacct((FIXTURES / f"{name}.psv").read_text()))
    return found


def hints_of(name: str) -> list[str]:
    acct = job(name)
    return hints(acct.job.state, job_efficiency(acct), CFG)


def test_a_one_cpu_job_is_never_told_to_ask_for_fewer_cores() -> None:
    acct = job("sacct_idle_1cpu_3")
    assert (acct.job.alloc_cpus, job_efficiency(acct).cpu_efficiency) == (1, 0.0005)
    assert hints_of("sacct_idle_1cpu_3") == [
        "It used 2.6 MiB of 64.0 MiB requested memory (4 %): request less.",
        "It ran 0:00:04 of its 0:10:00 limit: ask for a shorter --time (QoS 'short' fits)."]


def test_an_idle_job_with_four_cpus_is_told_to_ask_for_fewer() -> None:
    assert hints_of("sacct_idle_4cpus_2") == [
        "It used 2.8 MiB of 64.0 MiB requested memory (4 %): request less.",
        "CPU efficiency was 0 % of 4 CPUs: ask for fewer cores.",
        "It ran 0:00:04 of its 0:10:00 limit: ask for a shorter --time (QoS 'short' fits)."]


def test_a_failed_job_gets_no_advice_about_its_time_limit_or_cores() -> None:
    acct = job("sacct_failed_in_limit_1")
    assert (acct.job.state, acct.job.elapsed, acct.job.time_limit) == ("FAILED", 0.0, 600.0)
    assert hints_of("sacct_failed_in_limit_1") == []
    # nor a failed job without a limit about anything but the limit
    assert hints_of("sacct_failed_11") == [
        "No time limit was set: give --time so the job can be scheduled sooner."]


def test_a_timed_out_job_is_told_to_ask_for_more_time_not_less() -> None:
    assert hints_of("sacct_timeout_10") == [
        "The job reached its time limit: ask for more time with --time.",
        "It used 3.0 MiB of 256.0 MiB requested memory (1 %): request less."]


def test_a_job_killed_over_its_memory_is_told_to_ask_for_more() -> None:
    assert hints_of("sacct_oom_13") == [
        "The job ran out of memory: ask for more with --mem or --mem-per-cpu.",
        "No time limit was set: give --time so the job can be scheduled sooner."]


def test_the_end_shows_the_signal_or_that_there_was_none_never_exit_code_0() -> None:
    assert acct_ending(job("sacct_timeout_10")) == "signal 15 (SIGTERM)"  # on the batch step
    assert acct_ending(job("sacct_cancelled_running_18")) == "signal 15 (SIGTERM)"
    assert acct_ending(job("sacct_cancelled_pending_17")) == "never started"
    assert acct_ending(job("sacct_oom_13")) == "signal 9 (SIGKILL)"
    assert acct_ending(job("sacct_failed_11")) == "exit code 3"
    assert acct_ending(job("sacct_completed_9")) == "exit code 0"


def _mailprog_event(scenario: str) -> dict:
    text = (FIXTURES / "mailprog_examples.txt").read_text()
    chunk = next(c for c in text.split("## ")[1:] if c.startswith(scenario))
    lines = chunk.rstrip("\n").split("\n")[1:]
    argv = [line.split("=", 1)[1] for line in lines if line.startswith("argv[")]
    env = dict(line.split("=", 1) for line in lines if line.startswith("SLURM_"))
    return {"argv": argv, "env": env}


def test_notification_titles_of_jobs_slurm_stopped() -> None:
    timeout = parse_event(_mailprog_event("FAIL with TIMEOUT"))
    assert title(timeout) == "Slurm job 10 failed: TIMEOUT, no signal recorded"
    assert title(timeout, {"signal": 15, "started": True}) == (
        "Slurm job 10 failed: TIMEOUT, signal 15 (SIGTERM)")
    running = parse_event(_mailprog_event("scancel of a RUNNING job"))
    assert title(running, {"signal": 15}) == "Slurm job 18 ended: CANCELLED, signal 15 (SIGTERM)"
    pending = parse_event(_mailprog_event("scancel of a held PENDING job"))
    assert title(pending) == "Slurm job 17 ended: CANCELLED, never started"
    failed = parse_event(_mailprog_event("FAIL   —"))
    assert title(failed) == "Slurm job 11 failed: FAILED, exit code 3"
    killed = parse_event(_mailprog_event("FAIL — over --mem"))
    assert title(killed) == "Slurm job 13 failed: FAILED, signal 9 (SIGKILL)"
