"""Slack figures: a signed event POSTed to /slack/events → acknowledgement reaction, and →
the report's chat.postMessage, through the real Bolt app, Dispatcher and the Sender against
the local fake Slack Web API.

Run: .venv/bin/python bench/slack.py [N]   (a temporary home; N sequential commands, 200)
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.support.fake_slack import FakeSlack
from tests.support.slack import Stack, mention


def percentiles(times: list[float]) -> str:
    times = sorted(times)
    p99 = times[max(0, int(len(times) * 0.99) - 1)]
    return f"p50 {statistics.median(times) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms (n={len(times)})"


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    home = Path(tempfile.mkdtemp(prefix="chatops-bench-slack-"))
    with FakeSlack() as fake:
        stack = Stack(home, fake)
        try:
            stack.send(mention("<@UBOT> status"))  # warm up: users.info, Bolt's auth.test
            fake.wait_count("chat.postMessage", 1)
            answered, reacted, reported = [], [], []
            for i in range(count):
                reactions = len(fake.of("reactions.add"))
                posts = len(fake.of("chat.postMessage"))
                start = time.perf_counter()
                status = stack.send(mention(f"<@UBOT> example say hello Bob{i}"))
                answered.append(time.perf_counter() - start)
                assert status == 200
                fake.wait_count("reactions.add", reactions + 1)
                reacted.append(time.perf_counter() - start)
                fake.wait_count("chat.postMessage", posts + 1)
                reported.append(time.perf_counter() - start)
                fake.wait_count("reactions.add", reactions + 2)
        finally:
            stack.close()
    print(f"POST /slack/events answered:        {percentiles(answered)}")
    print(f"event → acknowledgement reaction:   {percentiles(reacted)}")
    print(f"event → report posted in the thread: {percentiles(reported)}")


if __name__ == "__main__":
    main()
