"""The dispatcher end to end: wake-up latency, throughput, PostgreSQL with 1 and 3 dispatchers,
and side by side with huey, the Popen floors and the code before issue 18.

Real `chatops dispatcher` processes run real jobs with logs and reports. Run:
    .venv/bin/python bench/dispatch.py [--jobs 2000] [--latency-jobs 200] [--no-postgres]
    .venv/bin/python bench/dispatch.py --side-by-side [--rounds 5] [--job-user chatops-job]

--side-by-side runs, in interleaved rounds (each round in a rotated order, so background load
hits every contender alike), 2000 `true` jobs through: this code; the code of --before (862d1bd,
the commit before issue 18, checked out into a temporary `git worktree`); huey 3.5.4's SqliteHuey
consumer with 8 worker threads whose task is `subprocess.run(["true"])` (installed into a
throwaway venv under /tmp, not a project dependency); and the floors, Python `Popen(["bash",
"-c", "true"])` and `Popen(["true"])` from 8 threads, and `true` started through
dispatcher/spawn.py's `posix_spawn` from 8 threads. Then 2000 `sleep 0.01; seq 100` jobs
(100 lines of output each) through this code and the code before. It prints every round, the
medians, and the ratios measured within each round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CONFIG = REPO / "bench/bench_config.py"
BEFORE = "862d1bd"  # the code before issue 18 (the side-by-side baseline)
HUEY = "huey==3.5.4"
HUEY_VENV = Path(tempfile.gettempdir()) / "chatops-bench-huey"
KINDS = {"true": "bench_noop", "output": "bench_chatty"}

# -- one run of one code's dispatcher (in a child process: `--drive CODE`) ---------------------


def drive(code: Path, kind: str, jobs: int, database_url: str | None, dispatchers: int,
          job_user: str | None) -> float:
    """Enqueue ``jobs`` jobs into a fresh queue served by ``code``'s dispatchers; jobs/s."""
    sys.path.insert(0, str(code))  # this code's chatops, not necessarily ours
    from sqlalchemy import create_engine, text

    from chatops import wakeup
    from chatops.events import Requester
    from chatops.service import open_queue
    from chatops.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o711)  # the job account reaches its writeable folder inside
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATOPS_")}
        env.update(CHATOPS_HOME=tmp, CHATOPS_CONFIG=str(CONFIG), CHATOPS_LOG_LEVEL="WARNING",
                   PYTHONPATH=str(code))
        if database_url:
            env["CHATOPS_DATABASE_URL"] = database_url
        if job_user:
            env["CHATOPS_JOB_USER"] = job_user
        chatops = [PYTHON, "-m", "chatops.cli"]
        subprocess.run([*chatops, "db", "upgrade"], env=env, cwd=code, check=True,
                       capture_output=True)
        settings = load_settings(env)
        queue = open_queue(settings)
        procs = [subprocess.Popen([*chatops, "dispatcher"], env=env, cwd=code,
                                  stderr=subprocess.DEVNULL) for _ in range(dispatchers)]
        # Progress is read in autocommit, outside the code under test: the same for both codes.
        watch = create_engine(settings.database_url, isolation_level="AUTOCOMMIT")
        try:
            while len(queue.dispatchers()) < dispatchers:
                if any(p.poll() is not None for p in procs):
                    raise SystemExit(f"a dispatcher of {code} exited at start")
                time.sleep(0.05)
            time.sleep(1.0)  # let them finish starting (imports of the notification parts)
            who = Requester(platform="console", user="bench", channel="bench")
            started = time.time()
            for n in range(jobs):
                queue.enqueue(KINDS[kind], {"n": str(n)}, who, timeout=60, concurrency=10**6,
                              count_running=False)
            wakeup.notify(settings.run_dir, "dispatcher")
            with watch.connect() as conn:
                busy = text("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")
                while conn.execute(busy).scalar():
                    if any(p.poll() is not None for p in procs):
                        raise SystemExit(f"a dispatcher of {code} exited")
                    time.sleep(0.02)
                elapsed = time.time() - started
                done = conn.execute(text("SELECT count(*) FROM jobs WHERE state = 'succeeded'"))
                succeeded = done.scalar()
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(30)
            watch.dispose()
    assert succeeded == jobs, f"only {succeeded} of {jobs} jobs succeeded"
    return jobs / elapsed


def run_code(code: Path, kind: str, jobs: int, database_url: str | None = None,
             dispatchers: int = 1, job_user: str | None = None) -> float:
    argv = [PYTHON, str(Path(__file__).resolve()), "--drive", str(code), "--kind", kind,
            "--jobs", str(jobs), "--dispatchers", str(dispatchers)]
    if database_url:
        argv += ["--database-url", database_url]
    if job_user:
        argv += ["--job-user", job_user]
    return json.loads(output_of(argv).splitlines()[-1])["rate"]


def output_of(argv: list[str], **kwargs: object) -> str:
    """Run a child to its end; stopped with this process, it stops its own children."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, **kwargs)
    try:
        out, _ = proc.communicate()
    except BaseException:
        proc.terminate()
        proc.wait(60)
        raise
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, argv, out)
    return out


# -- latency (this code) ------------------------------------------------------------------------

def latency(jobs: int) -> tuple[float, float]:
    """Enqueue -> the job's own shell reports it started ($EPOCHREALTIME), one job at a time."""
    sys.path.insert(0, str(REPO))
    from chatops import wakeup
    from chatops.events import Requester
    from chatops.joblogs import JobLogs, type_folder
    from chatops.service import open_queue
    from chatops.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATOPS_")}
        env.update(CHATOPS_HOME=tmp, CHATOPS_CONFIG=str(CONFIG), CHATOPS_LOG_LEVEL="WARNING",
                   PYTHONPATH=str(REPO))
        chatops = [PYTHON, "-m", "chatops.cli"]  # this checkout's, whatever the venv points at
        subprocess.run([*chatops, "db", "upgrade"], env=env, cwd=REPO, check=True,
                       capture_output=True)
        settings = load_settings(env)
        queue = open_queue(settings)
        proc = subprocess.Popen([*chatops, "dispatcher"], env=env, cwd=REPO,
                                stderr=subprocess.DEVNULL)
        who = Requester(platform="console", user="bench", channel="bench")
        delays = []
        try:
            while not queue.dispatchers():
                time.sleep(0.05)
            time.sleep(1.0)
            folder = type_folder(settings.logs_dir, "bench", "bench_stamp")
            for n in range(jobs):
                asked = time.time()
                job = queue.enqueue("bench_stamp", {"n": str(n)}, who, timeout=60,
                                    concurrency=10**6, count_running=False)
                wakeup.notify(settings.run_dir, "dispatcher")
                out = JobLogs(folder, job.job_id).path("stdout")
                deadline = time.time() + 10
                while time.time() < deadline:
                    text = out.read_text() if out.exists() else ""
                    if text.endswith("\n"):
                        delays.append(float(text.split()[0]) - asked)
                        break
                    time.sleep(0.001)
                time.sleep(0.01)  # let the dispatcher go back to sleep: measure a cold wake
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    delays.sort()
    return statistics.median(delays) * 1000, delays[int(len(delays) * 0.99) - 1] * 1000


# -- huey and the floors ------------------------------------------------------------------------

HUEY_TASKS = '''
import os, subprocess
from huey import SqliteHuey

huey = SqliteHuey(filename=os.environ["HUEY_DB"])


@huey.task()
def run_true():
    return subprocess.run(["true"]).returncode
'''
HUEY_DRIVE = '''
import sys, time
from tasks import huey, run_true

jobs = int(sys.argv[1])
started = time.time()
for _ in range(jobs):
    run_true()
while huey.result_count() < jobs:  # each task stores its result: done when all are there
    time.sleep(0.02)
print(jobs / (time.time() - started))
'''


def huey_venv() -> Path:
    python = HUEY_VENV / "bin/python"
    if not python.exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(HUEY_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", HUEY], check=True)
    return python


def huey_rate(jobs: int) -> float:
    """huey's SqliteHuey consumer, 8 worker threads (polling every 10-50 ms when idle)."""
    python = huey_venv()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "tasks.py").write_text(HUEY_TASKS)
        (Path(tmp) / "drive.py").write_text(HUEY_DRIVE)
        env = {**os.environ, "HUEY_DB": str(Path(tmp) / "huey.db"), "PYTHONPATH": tmp}
        consumer = subprocess.Popen(
            [str(python), str(HUEY_VENV / "bin/huey_consumer"), "tasks.huey", "-w", "8",
             "-k", "thread", "-d", "0.01", "-m", "0.05", "-q"],
            cwd=tmp, env=env, stderr=subprocess.DEVNULL)
        try:
            time.sleep(2.0)  # started and polling, as the dispatchers are given 1 s and more
            out = output_of([str(python), "drive.py", str(jobs)], cwd=tmp, env=env)
        finally:
            consumer.send_signal(signal.SIGINT)
            consumer.wait(30)
    return float(out.split()[-1])


def floor(name: str, jobs: int) -> float:
    """Python's own `Popen(argv).wait()` from 8 threads, or (``spawn``) `true` started through
    dispatcher/spawn.py's `posix_spawn`: no queue, no logs, no reports."""
    if name == "spawn":
        sys.path.insert(0, str(REPO))
        from dispatcher import spawn

        true, here, env = shutil.which("true"), os.getcwd(), dict(os.environ)
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

        def start(_: int) -> int:
            return spawn.exit_code(spawn.spawn(true, ["true"], env, here, devnull, 1, 2))
    else:
        def start(_: int) -> int:
            return subprocess.Popen(FLOORS[name]).wait()
    started = time.time()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(start, range(jobs)))
    return jobs / (time.time() - started)


def floor_rate(name: str, jobs: int) -> float:
    argv = [PYTHON, str(Path(__file__).resolve()), "--floor", name, "--jobs", str(jobs)]
    return json.loads(output_of(argv).splitlines()[-1])["rate"]


FLOORS = {"bash": ["bash", "-c", "true"], "true": ["true"], "spawn": None}

# -- PostgreSQL ---------------------------------------------------------------------------------


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


def postgres_rate(code: Path, jobs: int, dispatchers: int) -> float:
    url, handle = fresh_postgres()
    try:
        return run_code(code, "true", jobs, url, dispatchers)
    finally:
        drop_postgres(handle)


# -- side by side -------------------------------------------------------------------------------

def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def interleave(contenders: dict[str, Callable[[], float]], rounds: int
               ) -> dict[str, list[float]]:
    names = list(contenders)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        row = []
        for name in order:
            rates[name].append(contenders[name]())
            row.append(f"{name} {rates[name][-1]:.0f}")
        print(f"  round {r + 1} (load {load()}): " + ", ".join(row), flush=True)
    return rates


def summary(rates: dict[str, list[float]], ours: str, others: list[str]) -> None:
    for name, values in rates.items():
        print(f"  {name:<44} median {statistics.median(values):6.0f} jobs/s "
              f"({min(values):.0f}-{max(values):.0f})")
    for other in others:
        ratios = [a / b for a, b in zip(rates[ours], rates[other], strict=True)]
        print(f"  {ours} / {other}: {statistics.median(ratios):.2f}x "
              f"(rounds {', '.join(f'{x:.2f}' for x in ratios)})")


def side_by_side(args: argparse.Namespace) -> None:
    before = Path(tempfile.mkdtemp(prefix="chatops-before-")) / "code"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(before),
                    args.before], check=True)
    try:
        huey_venv()
        jobs = args.jobs
        ours, old = "hpc-chatops", f"hpc-chatops before ({args.before})"
        contenders = {
            ours: lambda: run_code(REPO, "true", jobs),
            old: lambda: run_code(before, "true", jobs),
            "huey SqliteHuey -w 8": lambda: huey_rate(jobs),
            "floor Popen(bash -c true), 8 threads": lambda: floor_rate("bash", jobs),
            "floor Popen(true), 8 threads": lambda: floor_rate("true", jobs),
            "floor posix_spawn(true), 8 threads": lambda: floor_rate("spawn", jobs),
        }
        with_user = f"hpc-chatops, CHATOPS_JOB_USER={args.job_user}"
        if args.job_user:
            contenders[with_user] = lambda: run_code(REPO, "true", jobs, job_user=args.job_user)
        print(f"{jobs} `true` jobs, SQLite, 1 dispatcher, default concurrency "
              f"({(os.cpu_count() or 1) * 4}); {args.rounds} interleaved rounds", flush=True)
        rates = interleave(contenders, args.rounds)
        summary(rates, ours, [n for n in contenders if n != ours])
        if args.job_user:
            summary({k: rates[k] for k in (with_user, old, "huey SqliteHuey -w 8")}, with_user,
                    [old, "huey SqliteHuey -w 8"])
        print(f"\n{jobs} `sleep 0.01; seq 100` jobs (100 lines of output each)", flush=True)
        chatty = {ours: lambda: run_code(REPO, "output", jobs),
                  old: lambda: run_code(before, "output", jobs)}
        if args.job_user:
            chatty[with_user] = lambda: run_code(REPO, "output", jobs, job_user=args.job_user)
        rates = interleave(chatty, args.rounds)
        summary(rates, ours, [old])
        if args.job_user:
            summary({k: rates[k] for k in (with_user, old)}, with_user, [old])
        if not args.no_postgres:
            print(f"\n{jobs} `true` jobs, PostgreSQL (one round)", flush=True)
            for code, name in ((REPO, ours), (before, old)):
                for count in (1, 3):
                    print(f"  {name}, {count} dispatcher(s): "
                          f"{postgres_rate(code, jobs, count):.0f} jobs/s (load {load()})",
                          flush=True)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)],
                       check=False)
        shutil.rmtree(before.parent, ignore_errors=True)
    p50, p99 = latency(args.latency_jobs)
    print(f"\nenqueue -> job started ({args.latency_jobs} jobs, one at a time): p50 {p50:.1f} ms,"
          f" p99 {p99:.1f} ms (load {load()})   target p50 <= 10 ms, p99 <= 30 ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--side-by-side", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default=BEFORE, help="the commit to compare with")
    parser.add_argument("--job-user", help="also measure with CHATOPS_JOB_USER set to this")
    # internal: one run in a child process
    parser.add_argument("--drive", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="true", help=argparse.SUPPRESS)
    parser.add_argument("--dispatchers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--floor", choices=FLOORS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up: worktree, dispatchers
    if args.drive:
        rate = drive(args.drive, args.kind, args.jobs, args.database_url, args.dispatchers,
                     args.job_user)
        print(json.dumps({"rate": rate}))
        return
    if args.floor:
        print(json.dumps({"rate": floor(args.floor, args.jobs)}))
        return
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; load average {load()}")
    if args.side_by_side:
        side_by_side(args)
        return
    p50, p99 = latency(args.latency_jobs)
    print(f"enqueue -> job started ({args.latency_jobs} jobs): p50 {p50:.1f} ms, p99 {p99:.1f} ms"
          f"   target p50 <= 10 ms, p99 <= 30 ms   (bennettbot ~510 ms / ~1 s)")
    rate = run_code(REPO, "true", args.jobs)
    print(f"end to end `true` jobs, SQLite, 1 dispatcher: {rate:.0f} jobs/s"
          f"   (bennettbot 43-68 jobs/s)")
    if args.no_postgres:
        return
    rates = {count: postgres_rate(REPO, args.jobs, count) for count in (1, 3)}
    for count, value in rates.items():
        print(f"end to end `true` jobs, PostgreSQL, {count} dispatcher(s): {value:.0f} jobs/s")
    print(f"PostgreSQL 3 dispatchers / 1 dispatcher: {rates[3] / rates[1]:.2f}x "
          "(one host with 2 cores: the dispatchers share the CPUs)")


if __name__ == "__main__":
    main()
