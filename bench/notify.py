"""Benchmark: a burst of Slurm notifications through the real pipeline, under rate limits.

    .venv/bin/python bench/notify.py [--events 10000] [--targets 100] [--interval 0.5]

Spools ``--events`` MailProg events (one receiver each, spread evenly over ``--targets`` Slack
channels), then runs the notification component as the dispatcher does (ingest thread woken
by ``step`` every 0.1 s) and the Slack bot's sender (``bot/sender.py``: the outbound table,
its leases and thread pool, the Slack platform's rendering) against a Slack stand-in on 127.0.0.1
that answers 429 to any target asked faster than once per ``--interval`` seconds. Slack allows
about one message per second per channel; the interval is scaled down (0.5 s by default) so
the run takes about a minute instead of minutes. The lower bound the limits allow is
``(events / targets - 1) x interval``; the target is a completion time within 1.2x of it, with
zero lost (every event delivered exactly once) and no 429 provoked.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from chatops import outbound  # noqa: E402
from chatops.notify.config import load_notify_config  # noqa: E402
from dispatcher.notify_ingest import NotifyIngest  # noqa: E402
from tests.support.notify import (  # noqa: E402
    SLACK_TOKEN,
    FakeChatApi,
    Senders,
    event,
    make_service,
    spool,
)


def _serve(interval: float, pipe: Any) -> None:
    api = FakeChatApi(per_target=interval)
    pipe.send(api.url)
    threading.Event().wait()


def start_stand_in(interval: float) -> tuple[str, multiprocessing.Process]:
    """The Slack stand-in in its own process, like a remote API (no shared GIL)."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve, args=(interval, child), daemon=True)
    process.start()
    return parent.recv(), process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    api_url, api_process = start_stand_in(args.interval)
    tmp = Path(tempfile.mkdtemp(prefix="chatops-bench-notify-"))
    service = make_service(tmp, SLACK_BOT_TOKEN=SLACK_TOKEN, SLACK_API_URL=f"{api_url}/api/")
    channels = [f"C{n:04d}" for n in range(args.targets)]
    cfg = load_notify_config({
        "slack": {"allowed_channels": channels},
        "rate_limits": {"slack": {"per_target": args.interval, "per_second": 0}},
        "user_cap": {"count": args.events * 2, "window": 3600},
    })
    ingest = NotifyIngest(service.settings, service.config, service.queue, runner=None, cfg=cfg)
    spool_dir = service.settings.spool_dir
    for n in range(args.events):  # written before the clock starts: the burst is waiting
        spool(spool_dir, event(job_id=10000 + n, mail_user=f"slack:{channels[n % args.targets]}",
                               user=f"user{n % args.targets}"))
    senders = Senders(service, cfg)  # what `chatops bot slack` runs
    senders["slack"].run_dir = service.settings.run_dir  # woken by the ingest, as in production
    senders["slack"].poll_interval = service.settings.poll_interval
    stop = threading.Event()
    started = time.time()
    ingest.start(stop)
    threading.Thread(target=senders["slack"].run, args=(stop,), daemon=True).start()
    ingested_at = None
    try:
        while True:
            ingest.step(time.time())  # what the dispatcher loop does on each wake-up
            counts = outbound.counts(ingest.engine)
            if ingested_at is None and not any(spool_dir.glob("[0-9]*.json")):
                ingested_at = time.time() - started
            if counts.get("delivered", 0) + counts.get("dead", 0) >= args.events:
                break
            time.sleep(0.1)
        elapsed = time.time() - started
    finally:
        stop.set()
        ingest.close()
        senders.close()
    per_target = args.events / args.targets
    bound = (per_target - 1) * args.interval
    with urllib.request.urlopen(f"{api_url}/stats", timeout=30) as answer:
        stats = json.load(answer)
    api_process.terminate()
    texts = Counter(text.split()[2] for _, _, text in stats["accepted"])
    duplicates = sum(c - 1 for c in texts.values() if c > 1)
    lost = args.events - len(texts)
    counts = outbound.counts(ingest.engine)
    print(f"events {args.events}, targets {args.targets}, per-target interval {args.interval} s")
    print(f"all spool files ingested after {ingested_at or elapsed:.1f} s")
    print(f"completion {elapsed:.1f} s; lower bound {bound:.1f} s; ratio {elapsed / bound:.3f} "
          f"(target <= 1.2)")
    print(f"states {counts}; lost {lost}; duplicates {duplicates}; "
          f"HTTP requests {stats['requests']}; 429s provoked {stats['violations']}")
    ok = elapsed <= 1.2 * bound and lost == 0 and duplicates == 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
