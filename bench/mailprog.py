"""Benchmark: one MailProg call, and a burst of concurrent calls.

    .venv/bin/python bench/mailprog.py [--runs 200] [--concurrency 200] [--http]

Measures, in the same run and interleaved (so load from anything else hits both alike), the
median wall time of

* ``/usr/bin/python3 -I -S -c pass``: the floor for any Python MailProg;
* ``scripts/chatops-mailprog -s SUBJECT USER`` in spool mode, run as slurmctld runs it: an
  environment of only SLURM_* variables (settings from a conf file named by
  CHATOPS_MAILPROG_CONF), cwd elsewhere, stdin from /dev/null;

and prints the ratio (target: at most 1.5). For context it also times the venv interpreter with
site and the pip console-script wrapper, when present, and with ``--http`` one call in HTTP mode
against a local server. Then it starts ``--concurrency`` calls at once and checks every one
left exactly one complete JSON file and no temp file.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.slurm_mail import SLURM_ENV, SUBJECT  # noqa: E402

SCRIPT = ROOT / "scripts" / "chatops-mailprog"
PYTHON = "/usr/bin/python3"


def spawn(argv: list[str], env: dict[str, str], cwd: str) -> int:
    """Start argv with stdin from /dev/null, stdout/stderr discarded; return the pid."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
    ]
    old = os.getcwd()
    os.chdir(cwd)  # posix_spawn has no cwd action before 3.13
    try:
        return os.posix_spawn(argv[0], argv, env, file_actions=actions)
    finally:
        os.chdir(old)


def run_once(argv: list[str], env: dict[str, str], cwd: str) -> float:
    """Wall time of one run, in ms."""
    start = time.perf_counter_ns()
    pid = spawn(argv, env, cwd)
    _, status = os.waitpid(pid, 0)
    elapsed = (time.perf_counter_ns() - start) / 1e6
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[0]} exited with status {status}")
    return elapsed


def spool_files(spool: Path) -> tuple[list[Path], list[Path]]:
    names = list(spool.iterdir()) if spool.exists() else []
    return [p for p in names if p.suffix == ".json" and p.name[0].isdigit()], [
        p for p in names if p.name.endswith(".tmp")
    ]


class _Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--http", action="store_true", help="also time one call in HTTP mode")
    opts = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-mailprog-"))
    try:
        spool = work / "spool"
        conf = work / "mailprog.conf"
        conf.write_text(f"CHATOPS_SPOOL_DIR={spool}\n")
        env = dict(SLURM_ENV, CHATOPS_MAILPROG_CONF=str(conf))
        cwd = str(work)
        mailprog = [str(SCRIPT), "-s", SUBJECT, "someone"]
        cases: dict[str, list[str]] = {
            "python3 -I -S -c pass": [PYTHON, "-I", "-S", "-c", "pass"],
            "chatops-mailprog (spool)": mailprog,
        }
        venv_python = ROOT / ".venv" / "bin" / "python"
        wrapper = ROOT / ".venv" / "bin" / "chatops-mailprog"
        extra: dict[str, list[str]] = {}
        if venv_python.exists():
            extra["venv python -c pass (site)"] = [str(venv_python), "-c", "pass"]
        if wrapper.exists() and wrapper.resolve() != SCRIPT.resolve():
            extra["pip console-script wrapper (spool)"] = [str(wrapper), "-s", SUBJECT, "someone"]

        for argv in (*cases.values(), *extra.values()):  # warm the page cache and the .pyc
            run_once(argv, env, cwd)
        times: dict[str, list[float]] = {name: [] for name in (*cases, *extra)}
        for i in range(opts.runs):
            order = list(cases.items())
            if i % 2:
                order.reverse()
            for name, argv in order:
                times[name].append(run_once(argv, env, cwd))
            for name, argv in extra.items():
                if i < max(opts.runs // 4, 10):
                    times[name].append(run_once(argv, env, cwd))

        spooled, leftovers = spool_files(spool)
        calls = 1 + len(times["chatops-mailprog (spool)"])
        calls += sum(1 + len(times[name]) for name in extra if "chatops-mailprog" in extra[name][0])
        if len(spooled) != calls or leftovers:
            raise SystemExit(f"expected {calls} spooled events, got {len(spooled)}, {leftovers=}")

        http_ms: list[float] = []
        if opts.http:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            url = f"http://127.0.0.1:{server.server_address[1]}/slurm/events"
            http_env = dict(env, CHATOPS_EVENTS_URL=url, CHATOPS_EVENTS_TOKEN="bench-token")
            run_once(mailprog, http_env, cwd)
            http_ms = [run_once(mailprog, http_env, cwd) for _ in range(max(opts.runs // 4, 10))]
            server.shutdown()
            if len(spool_files(spool)[0]) != calls:
                raise SystemExit("HTTP mode spooled instead of posting")

        base = statistics.median(times["python3 -I -S -c pass"])
        ours = statistics.median(times["chatops-mailprog (spool)"])
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {PYTHON}")
        print(f"one call, median of {opts.runs} interleaved runs (ms):")
        for name, values in times.items():
            q = statistics.quantiles(values, n=10) if len(values) > 1 else values * 9
            print(
                f"  {name:38s} median {statistics.median(values):6.2f}   "
                f"p10 {q[0]:6.2f}   p90 {q[-1]:6.2f}   (n={len(values)})"
            )
        if http_ms:
            print(
                f"  {'chatops-mailprog (http POST, 204)':38s} median "
                f"{statistics.median(http_ms):6.2f}   (n={len(http_ms)})"
            )
        ratio = ours / base
        verdict = "OK" if ratio <= 1.5 else "OVER TARGET"
        print(f"ratio chatops-mailprog / bare interpreter: {ratio:.2f}x (target <= 1.5x) {verdict}")

        burst = work / "burst"
        conf.write_text(f"CHATOPS_SPOOL_DIR={burst}\n")
        start = time.perf_counter()
        pids = [
            spawn([str(SCRIPT), "-s", f"{SUBJECT} #{n}", "someone"], env, cwd)
            for n in range(opts.concurrency)
        ]
        failed = sum(1 for pid in pids if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        wall = time.perf_counter() - start
        spooled, leftovers = spool_files(burst)
        subjects = {json.loads(p.read_text())["subject"] for p in spooled}
        lost = opts.concurrency - len(subjects)
        print(
            f"{opts.concurrency} concurrent calls: {len(spooled)} spooled, {lost} lost, "
            f"{len(leftovers)} temp files left, {failed} non-zero exits, "
            f"{wall * 1000:.0f} ms wall ({opts.concurrency / wall:.0f} calls/s)"
        )
        return 0 if (lost == 0 and not leftovers and len(spooled) == opts.concurrency) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
