"""Calculations: 100 small calculations submitted at once by 20 users on the test cluster.

    .venv/bin/python bench/calc.py [--users 20] [--each 5] [--poll 2]

Measures, per calculation, the time from the file received (``Submitter.submit`` called) to the
"submitted as calculation N (Slurm job M …)" notice being queued, and from the program's end (it
writes the time as its last act, into a result file) to the report with the result files being
queued; checks 0 lost, 0 submitted twice (one Slurm job of each calculation's name), and the
quota totals (each user used exactly ``--each``, and one more is refused). The real Dispatcher
runs in this process on a temporary SQLite database; the cluster is the shared test cluster
(``bash scripts/test-cluster.sh up``), whose MailProg is not ours: ends are found by polling.
Targets (issue 14): submitted p50 ≤ 1 s, p99 ≤ 3 s; results posted p50 ≤ 5 s (HPC_bot polls
every 120–240 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select

from chatops.calc import store
from chatops.calc.submit import Attachment, Submitter
from chatops.db import deliveries, jobs
from chatops.events import Requester
from tests.support.remote import Harness, cluster_env, cluster_settings

PROGRAM = "wc -l < {} > lines.txt; date +%s.%N > done.txt; : {args}"


def quantile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--each", type=int, default=5)
    parser.add_argument("--poll", type=float, default=2.0, help="the runner's poll_seconds")
    args = parser.parse_args()
    env = cluster_env()
    upload = f"{env['CHATOPS_TEST_JOBS_DIR']}/bench-calc-{uuid.uuid4().hex[:8]}"
    runners = {"test": {"count": {
        "program": PROGRAM, "extensions": [".gjf"],
        "slurm": {"partition": "debug", "time": "5", "mem": "32M",
                  "poll_seconds": args.poll}}}}
    home = Path(tempfile.mkdtemp(prefix="bench-calc-"))
    h = Harness(home, {}, {"test": cluster_settings(env, upload_path=upload)}, runners=runners,
                calculations={"quota": args.each}, CHATOPS_MAX_CONCURRENCY="8")
    submitter = Submitter(h.settings, h.config, h.queue)
    received: dict[int, float] = {}
    refused: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(args.users)

    def user(n: int) -> None:
        who = Requester(platform="console", user=f"user{n:02d}", channel=f"bench-{n}",
                        user_name=f"user{n:02d}", is_direct=True, is_guest=False)
        data = f"molecule {n}\nH 0 0 0\n".encode()
        barrier.wait()
        for i in range(args.each + 1):  # the last one must be refused: the quota is spent
            start = time.time()
            outcome = submitter.submit(who, [], Attachment(f"m{n}-{i}.gjf", len(data),
                                                           lambda: data))
            with lock:
                if outcome.job_id is None:
                    refused.append(outcome.text)
                else:
                    received[outcome.job_id] = start

    threads = [threading.Thread(target=user, args=(n,)) for n in range(args.users)]
    began = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = args.users * args.each
    deadline = time.time() + 600
    try:
        while time.time() < deadline:  # one query a second: the bench's own load stays small
            with h.queue.engine.connect() as conn:
                ended = conn.execute(select(func.count()).select_from(jobs).where(
                    jobs.c.id.in_(list(received)),
                    jobs.c.state.not_in(("queued", "running")))).scalar()
            if ended == total:
                break
            time.sleep(1)
        wall = time.time() - began
        submitted, posted = [], []
        with h.queue.engine.connect() as conn:
            rows = list(conn.execute(select(deliveries).where(
                deliveries.c.job_id.in_(list(received)))))
        for job_id, start in received.items():
            notes = [r for r in rows if r.job_id == job_id
                     and "submitted as calculation" in r.payload]
            reports = [r for r in rows if r.job_id == job_id and '"kind": "report"' in r.payload]
            if notes:
                submitted.append(notes[0].created_at - start)
            if reports:
                files = json.loads(reports[0].payload)["files"]
                done = [f["path"] for f in files if f["name"] == "done.txt"]
                if done:
                    posted.append(reports[0].created_at - float(Path(done[0]).read_text()))
        states = [h.queue.get(j).state for j in received]
        names = h.remote.pool.connection("test").run(
            ["sacct", "-X", "-n", "-P", "-S", "now-1hours", "-o", "JobName,WorkDir"], 60)
        ours = [line.split("|")[0] for line in names.stdout.splitlines() if upload in line]
        twice = len(ours) - len(set(ours))
        used = [store.quota(h.queue.engine, h.config.calc, f"console:user{n:02d}").used
                for n in range(args.users)]
        print(f"{total} calculations by {args.users} users, all ended in {wall:.1f} s: "
              f"{states.count('succeeded')} succeeded, "
              f"{total - len([s for s in states if s in ('succeeded', 'failed')])} lost or other")
        print(f"file received -> submitted: p50 {statistics.median(submitted):.2f} s, "
              f"p99 {quantile(submitted, 0.99):.2f} s, max {max(submitted):.2f} s "
              f"(n={len(submitted)})")
        print(f"program ended -> results posted: p50 {statistics.median(posted):.2f} s, "
              f"p99 {quantile(posted, 0.99):.2f} s, max {max(posted):.2f} s (n={len(posted)})")
        print(f"submitted twice: {twice}; quota used per user: {sorted(set(used))}; "
              f"refused over quota: {len(refused)} of {args.users}")
    finally:
        h.stop()


if __name__ == "__main__":
    main()
