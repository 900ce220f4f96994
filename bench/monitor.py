"""The cluster monitor at scale: 50 monitored clusters (the test cluster under 50 names, each
with its own pooled SSH connection) polled every 10 s by one in-process dispatcher.

    .venv/bin/python bench/monitor.py [--clusters 50] [--cadence 10s] [--rounds 6] [--cycles 2]

Measures, after a warm-up round:

* poll duration (``sinfo --json`` over the pooled connection, as the monitor records it), p50/p99;
* CPU used by the service process per poll round (all its threads: monitors, SSH transports,
  the dispatcher loop; the webhook stand-in runs in a child process), target ≤ 1 s for 50;
* time from a node state change (``scontrol update ... state=drain``, then ``state=resume``) to
  each cluster's message arriving at a Discord webhook stand-in (sent by the real outbound
  worker), p50/p99/max, target p99 ≤ cadence + 2 s.

Needs the test cluster (``bash scripts/test-cluster.sh up``) and root (scontrol). The node is
drained for about one cadence per cycle and always resumed at the end.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from bot.discord_webhook import DiscordWebhookPlatform
from bot.sender import Sender
from chatops import migrate
from chatops.config_loader import build_config
from chatops.db import make_engine
from chatops.monitor_tables import monitor_states
from chatops.queue import Queue
from chatops.service import Service
from chatops.settings import load_settings
from dispatcher.loop import Dispatcher

ENV_FILE = Path("/tmp/chatops-test-cluster/cluster.env")

# The webhook stand-in: prints "<arrival time> <content as JSON>" per POST, answers like Discord.
WEBHOOK = r'''
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        print(time.time(), json.dumps(body["content"]), flush=True)
        raw = b'{"id": "1"}'
        self.send_response(200); self.send_header("Content-Length", str(len(raw)))
        self.send_header("Content-Type", "application/json"); self.end_headers()
        self.wfile.write(raw)
server = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_port, flush=True)
server.serve_forever()
'''


class Webhook:
    """The stand-in in a child process, and the messages it received."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", WEBHOOK], stdout=subprocess.PIPE,
                                     text=True)
        self.port = int(self.proc.stdout.readline())
        self.messages: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            at, _, content = line.partition(" ")
            with self.lock:
                self.messages.append((float(at), json.loads(content)))

    def since(self, start: float, needle: str) -> list[tuple[float, str]]:
        with self.lock:
            return [(at, text) for at, text in self.messages if at >= start and needle in text]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"bench: timed out waiting for {what}")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def scontrol(node: str, *words: str) -> None:
    subprocess.run(["scontrol", "update", f"nodename={node}", *words], check=True, timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--cadence", default="10s")
    parser.add_argument("--rounds", type=int, default=6, help="steady rounds measured")
    parser.add_argument("--cycles", type=int, default=2, help="drain/resume cycles")
    args = parser.parse_args()
    env = dict(line.split("=", 1) for line in ENV_FILE.read_text().splitlines()
               if "=" in line and not line.startswith("#"))
    node = env["CHATOPS_TEST_SLURM_NODE"]
    names = [f"c{i:02d}" for i in range(args.clusters)]
    cluster = {"host": env["CHATOPS_TEST_SSH_HOST"], "port": int(env["CHATOPS_TEST_SSH_PORT"]),
               "user": env["CHATOPS_TEST_SSH_USER"], "key_file": env["CHATOPS_TEST_SSH_KEY"],
               "known_hosts": env["CHATOPS_TEST_SSH_KNOWN_HOSTS"], "connect_timeout": 5,
               "command_timeout": 8}
    webhook = Webhook()
    home = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    settings = load_settings({
        "CHATOPS_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home),
        "BENCH_WEBHOOK": f"http://127.0.0.1:{webhook.port}/api/webhooks/1/bench-token"})
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    queue = Queue(engine)
    config = build_config({}, {n: cluster for n in names}, monitors={n: {
        "cadence": args.cadence, "targets": ["discord_webhook:BENCH_WEBHOOK"]} for n in names})
    cadence = next(iter(config.monitors.values())).cadence
    dispatcher = Dispatcher(settings, config, queue)
    stop = threading.Event()
    service = Service(settings, config, queue)
    outbox = Sender.for_service(service, DiscordWebhookPlatform(service))
    threads = [threading.Thread(target=dispatcher.run, daemon=True),
               threading.Thread(target=outbox.run, args=(stop,), daemon=True)]
    for thread in threads:
        thread.start()

    def polled() -> dict[str, tuple[float, float, str]]:
        with engine.connect() as conn:
            return {r.cluster: (r.polled_at, r.poll_seconds, r.state) for r in conn.execute(
                select(monitor_states.c.cluster, monitor_states.c.polled_at,
                       monitor_states.c.poll_seconds, monitor_states.c.state))}

    try:
        start = time.time()
        print(f"{args.clusters} clusters, cadence {args.cadence}: warming up")
        wait_for(lambda: len(webhook.since(start, "")) >= args.clusters, 4 * cadence + 30,
                 "every cluster's first board")
        states = polled()
        down = [n for n, (_, _, state) in states.items() if state == "offline"]
        if down:
            print(f"  warning: {len(down)} cluster(s) offline after warm-up: {down[:5]}")
        # Steady rounds: poll durations and CPU, no changes.
        last = max(at for at, _, _ in states.values())
        durations: list[float] = []
        cpu_start, wall_start = cpu(), time.time()
        for _ in range(args.rounds):
            def next_round(after: float = last) -> dict | None:
                now = polled()
                done = len(now) == args.clusters and all(at > after for at, _, _ in
                                                         now.values())
                return now if done else None
            now = wait_for(next_round, 2 * cadence + 20, "a poll round")
            durations += [seconds for _, seconds, _ in now.values()]
            last = max(at for at, _, _ in now.values())
        cpu_used, wall = cpu() - cpu_start, time.time() - wall_start
        rounds = wall / cadence
        # Changes: drain, then resume; each cluster's message, timed at the webhook.
        latencies: list[float] = []
        try:
            for cycle in range(args.cycles):
                for words, needle in ((("state=drain", "reason=bench drain"), "bench drain"),
                                      (("state=resume",), f"{node} back to")):
                    time.sleep((cycle * 3.7 + 2.3) % cadence)  # land anywhere in a round
                    changed = time.time()
                    scontrol(node, *words)
                    arrived = wait_for(
                        lambda n=needle, c=changed: (lambda got: got if len(got) >= args.clusters
                                                     else None)(webhook.since(c, n)),
                        3 * cadence + 30, f"{args.clusters} messages saying {needle!r}")
                    latencies += [at - changed for at, _ in arrived[:args.clusters]]
        finally:
            subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"],
                           capture_output=True, timeout=30)
        print(f"poll duration over {len(durations)} polls: p50 {pct(durations, 0.5):.3f} s, "
              f"p99 {pct(durations, 0.99):.3f} s, max {max(durations):.3f} s")
        print(f"CPU of the service process: {cpu_used:.2f} s over {rounds:.1f} rounds = "
              f"{cpu_used / rounds:.3f} s per round of {args.clusters} polls (target <= 1 s)")
        print(f"node change -> message at the webhook, {len(latencies)} messages: "
              f"p50 {statistics.median(latencies):.2f} s, p99 {pct(latencies, 0.99):.2f} s, "
              f"max {max(latencies):.2f} s (target p99 <= {cadence + 2:g} s)")
    finally:
        stop.set()
        dispatcher.stop()
        threads[0].join(60)
        webhook.close()


if __name__ == "__main__":
    main()
