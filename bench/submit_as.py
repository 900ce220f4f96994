"""Jobs as the person: what sudo and the wrapper (scripts/chatops-submit) add to a Slurm query
and to a remote job, against the same done as the service's own account.

    .venv/bin/python bench/submit_as.py [--commands 50] [--jobs 40]

Needs the test cluster (``bash scripts/test-cluster.sh up``): logs in as chatops-agent and acts
as chatops-alice, as a cluster with submit_as = "requester" does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ssh import cluster, ms
from chatops.joblogs import JobLogs
from dispatcher.cluster_account import Account
from dispatcher.ssh import SSHPool
from dispatcher.ssh_jobs import SSHRun

PERSON = "chatops-alice"


def timed(count: int, action: Callable[[], object]) -> list[float]:
    action()  # the command shell and the connection open outside the measurement
    times = []
    for _ in range(count):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def jobs(account: Account, count: int, logs: Path) -> float:
    """``count`` short remote jobs started at once: their wall time."""
    logs.mkdir(parents=True)
    start = time.perf_counter()
    runs = []
    for i in range(count):
        run = SSHRun(i, account, "id -un", JobLogs(logs, i), 1 << 20)
        run.start_thread(run.main)
        runs.append(run)
    assert [run.wait() for run in runs] == [0] * count, [r.error for r in runs]
    assert (logs / "0.stdout").read_text() == f"{account.name}\n"
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=40)
    args = parser.parse_args()
    spec = replace(cluster(45), user="chatops-agent", submit_as="requester")
    pool = SSHPool({"test": spec}, {})
    connection = pool.connection("test")
    own, person = Account(connection), Account(connection, PERSON)
    query = ["squeue", "-h", "-u", PERSON]

    def check(account: Account) -> Callable[[], object]:
        def once() -> None:
            result = account.slurm(query, 30)
            assert result.returncode == 0, result
        return once

    direct, wrapped = timed(args.commands, check(own)), timed(args.commands, check(person))
    print(f"`{' '.join(query)}` through the command shell, {args.commands} times each:")
    print(f"  as the service's account (chatops-agent):   {ms(direct)}")
    print(f"  as {PERSON} through sudo and the wrapper: {ms(wrapped)}")
    print(f"  ratio: {statistics.median(wrapped) / statistics.median(direct):.2f}x, "
          f"+{(statistics.median(wrapped) - statistics.median(direct)) * 1000:.1f} ms a query")
    logs = Path(tempfile.mkdtemp(prefix="bench-submit-as-"))
    jobs(own, 1, logs / "warm")
    plain = jobs(own, args.jobs, logs / "own")
    personal = jobs(person, args.jobs, logs / "person")
    print(f"{args.jobs} parallel remote jobs (`id -un`): as chatops-agent {plain:.2f} s "
          f"({args.jobs / plain:.0f} jobs/s), as {PERSON} {personal:.2f} s "
          f"({args.jobs / personal:.0f} jobs/s); ratio {personal / plain:.2f}x")
    pool.close()


if __name__ == "__main__":
    main()
