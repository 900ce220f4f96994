"""SSH: one more command on the pooled connection (through its command shell, or on a new
channel) vs a new connection per command, and the throughput of many short remote jobs sharing
one connection.

    .venv/bin/python bench/ssh.py [--commands 50] [--jobs 100] [--command "sinfo -h"]

Needs the test cluster (``bash scripts/test-cluster.sh up``); runs as its user alice. The
predecessors (HPC_bot, mscluster-status) open a new connection for every command.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatops.cluster_config import ClusterSpec
from chatops.joblogs import JobLogs
from dispatcher.cluster_account import Account
from dispatcher.ssh import SSHPool
from dispatcher.ssh_jobs import SSHRun

ENV_FILE = Path("/tmp/chatops-test-cluster/cluster.env")


def cluster(max_sessions: int) -> ClusterSpec:
    env = dict(line.split("=", 1) for line in ENV_FILE.read_text().splitlines()
               if "=" in line and not line.startswith("#"))
    return ClusterSpec(name="test", host=env["CHATOPS_TEST_SSH_HOST"],
                       port=int(env["CHATOPS_TEST_SSH_PORT"]), user=env["CHATOPS_TEST_SSH_USER"],
                       key_file=env["CHATOPS_TEST_SSH_KEY"],
                       known_hosts=env["CHATOPS_TEST_SSH_KNOWN_HOSTS"],
                       max_sessions=max_sessions)


def ms(values: list[float]) -> str:
    values = sorted(values)
    p90 = values[int(len(values) * 0.9) - 1]
    return f"median {statistics.median(values) * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--command", default="sinfo -h")
    parser.add_argument("--sessions", type=int, default=40,
                        help="channels open at once (the test sshd allows MaxSessions 50)")
    args = parser.parse_args()
    spec = cluster(args.sessions)

    pool = SSHPool({"test": spec}, {})
    connection = pool.connection("test")
    connection.exec("true")  # connect once, outside the measurement
    pooled = []
    for _ in range(args.commands):
        start = time.perf_counter()
        result = connection.exec(args.command)
        pooled.append(time.perf_counter() - start)
        assert result.returncode == 0, result
    argv = args.command.split()
    connection.run(argv, 30)  # the command shell is opened on first use
    shell = []
    for _ in range(args.commands):
        start = time.perf_counter()
        result = connection.run(argv, 30)
        shell.append(time.perf_counter() - start)
        assert result.returncode == 0, result

    fresh = []
    for _ in range(args.commands):
        start = time.perf_counter()
        one = SSHPool({"test": spec}, {})
        result = one.connection("test").exec(args.command)
        one.close()
        fresh.append(time.perf_counter() - start)
        assert result.returncode == 0, result

    print(f"`{args.command}`, {args.commands} commands each:")
    print(f"  pooled connection, command shell: {ms(shell)}")
    print(f"  pooled connection, new channel:   {ms(pooled)}")
    print(f"  new connection per command:       {ms(fresh)}")
    print(f"  ratio new connection / new channel: "
          f"{statistics.median(fresh) / statistics.median(pooled):.2f}x; "
          f"new connection / command shell: "
          f"{statistics.median(fresh) / statistics.median(shell):.2f}x")

    logs = Path(tempfile.mkdtemp(prefix="bench-ssh-"))
    runs = []
    connects_before = connection.connects
    start = time.perf_counter()
    for i in range(args.jobs):
        run = SSHRun(i, Account(connection), f"echo job {i}", JobLogs(logs, i), 1 << 20)
        run.start_thread(run.main)
        runs.append(run)
    codes = [run.wait() for run in runs]
    elapsed = time.perf_counter() - start
    assert codes == [0] * args.jobs, codes
    assert all((logs / f"{i}.stdout").read_text() == f"job {i}\n" for i in range(args.jobs))
    print(f"{args.jobs} parallel short remote jobs (`echo`, with logs) on one connection "
          f"({args.sessions} channels at once): {elapsed:.2f} s, "
          f"{args.jobs / elapsed:.0f} jobs/s, new connections: "
          f"{connection.connects - connects_before}")
    pool.close()


if __name__ == "__main__":
    main()
