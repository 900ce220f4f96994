"""The dispatcher end to end: wake-up latency, throughput, and PostgreSQL with 1 and 3 dispatchers.

Real `chatops dispatcher` processes run real `bash -c` jobs with logs and reports. Run:
    .venv/bin/python bench/dispatch.py [--jobs 2000] [--latency-jobs 200] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chatops.events import Requester  # noqa: E402
from chatops.service import open_queue  # noqa: E402
from chatops.settings import load_settings  # noqa: E402

CHATOPS = str(Path(sys.executable).parent / "chatops")
WHO = Requester(platform="console", user="bench", channel="bench")


def environment(home: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATOPS_")}
    env.update(CHATOPS_HOME=str(home), CHATOPS_CONFIG=str(REPO / "bench/bench_config.py"),
               CHATOPS_LOG_LEVEL="WARNING")
    if database_url:
        env["CHATOPS_DATABASE_URL"] = database_url
    subprocess.run([CHATOPS, "db", "upgrade"], env=env, check=True, capture_output=True)
    return env


def start_dispatchers(env: dict[str, str], count: int) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([CHATOPS, "dispatcher"], env=env, stderr=subprocess.DEVNULL)
             for _ in range(count)]
    queue = open_queue(load_settings(env))
    deadline = time.time() + 15
    while len(queue.dispatchers()) < count and time.time() < deadline:
        time.sleep(0.05)
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(30)


def latency(jobs: int) -> tuple[float, float]:
    """Enqueue -> the job's own shell reports it started ($EPOCHREALTIME), one job at a time."""
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(Path(tmp))
        procs = start_dispatchers(env, 1)
        settings = load_settings(env)
        queue = open_queue(settings)
        from chatops import wakeup

        delays = []
        try:
            for n in range(jobs):
                asked = time.time()
                job = queue.enqueue("bench_stamp", {"n": str(n)}, WHO, timeout=60,
                                    concurrency=10**6, count_running=False)
                wakeup.notify(settings.run_dir, "dispatcher")
                out = settings.job_log_dir("bench", "bench_stamp", job.job_id) / "stdout"
                deadline = time.time() + 10
                while time.time() < deadline:
                    text = out.read_text() if out.exists() else ""
                    if text.endswith("\n"):
                        delays.append(float(text.split()[0]) - asked)
                        break
                    time.sleep(0.001)
                time.sleep(0.01)  # let the dispatcher go back to sleep: measure a cold wake
        finally:
            stop(procs)
    delays.sort()
    return statistics.median(delays) * 1000, delays[int(len(delays) * 0.99) - 1] * 1000


def throughput(jobs: int, database_url: str | None = None, dispatchers: int = 1) -> float:
    """`true` jobs through the queue and real dispatchers with the default concurrency."""
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(Path(tmp), database_url)
        queue = open_queue(load_settings(env))
        procs = start_dispatchers(env, dispatchers)
        try:
            started = time.time()
            for n in range(jobs):
                queue.enqueue("bench_noop", {"n": str(n)}, WHO, timeout=60,
                              concurrency=10**6, count_running=False)
            from chatops import wakeup

            wakeup.notify(load_settings(env).run_dir, "dispatcher")
            while queue.jobs_in(("queued", "running")):
                time.sleep(0.02)
            elapsed = time.time() - started
            done = [j for j in queue.history(jobs + 10) if j.state == "succeeded"]
            assert len(done) == jobs, f"only {len(done)} of {jobs} jobs succeeded"
        finally:
            stop(procs)
    return jobs / elapsed


def fresh_postgres() -> tuple[str, object]:
    import psycopg

    admin_url = os.environ.get("CHATOPS_TEST_PG_URL", "postgresql://root@127.0.0.1:5432/test")
    admin = psycopg.connect(admin_url, autocommit=True)
    name = f"chatops_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rsplit('/', 1)[0]}/{name}", (admin, name)


def drop_postgres(handle: object) -> None:
    admin, name = handle
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; default concurrency {(os.cpu_count() or 1) * 4}")
    p50, p99 = latency(args.latency_jobs)
    print(f"enqueue -> job started ({args.latency_jobs} jobs): p50 {p50:.1f} ms, p99 {p99:.1f} ms"
          f"   target p50 <= 20 ms, p99 <= 100 ms   (bennettbot ~510 ms / ~1 s)")
    rate = throughput(args.jobs)
    print(f"end to end `true` jobs, SQLite, 1 dispatcher: {rate:.0f} jobs/s   target >= 100"
          f"   (bennettbot 43-68 jobs/s)")
    if args.no_postgres:
        return
    rates = {}
    for count in (1, 3):
        url, handle = fresh_postgres()
        try:
            rates[count] = throughput(args.jobs, url, count)
        finally:
            drop_postgres(handle)
        print(f"end to end `true` jobs, PostgreSQL, {count} dispatcher(s): "
              f"{rates[count]:.0f} jobs/s")
    print(f"PostgreSQL 3 dispatchers / 1 dispatcher: {rates[3] / rates[1]:.2f}x "
          "(one host with 2 cores: the dispatchers share the CPUs)")


if __name__ == "__main__":
    main()
