"""Web server figures: webhook answer time over waitress, console send -> report readable.

Run: .venv/bin/python bench/web.py   (a temporary home; a real Dispatcher runs the jobs)
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from dispatcher.loop import Dispatcher
from tests.support.web import hook_headers, web_service
from webserver.app import create_app, make_server

TOKEN = "bench-token-123"


def percentiles(times: list[float]) -> str:
    times = sorted(times)
    p99 = times[max(0, int(len(times) * 0.99) - 1)]
    return f"p50 {statistics.median(times) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms (n={len(times)})"


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="chatops-bench-web-"))
    service = web_service(home, CHATOPS_WEB_TOKEN=TOKEN, CHATOPS_METRICS_PUBLIC="true")
    server = make_server(create_app(service), "127.0.0.1", 0)
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{server.effective_port}"
    dispatcher = Dispatcher(service.settings, service.config, service.queue)
    threading.Thread(target=dispatcher.run, daemon=True).start()
    time.sleep(0.5)

    for label, ref in (("that schedules a job", "refs/heads/master"),
                       ("that matches no rule", "refs/heads/x")):
        times = []
        for i in range(300):
            body = json.dumps({"ref": ref, "after": f"{i:040d}",
                               "pusher": {"name": "b"}}).encode()
            request = urllib.request.Request(url + "/github/site/", data=body,
                                             headers=hook_headers("push", body))
            start = time.perf_counter()
            with urllib.request.urlopen(request) as response:
                response.read()
            times.append(time.perf_counter() - start)
        print(f"webhook {label}: {percentiles(times)}")

    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    opener.open(f"{url}/login?token={TOKEN}").read()
    page = opener.open(url + "/console").read().decode()
    csrf = re.search(r'csrf-token" content="([^"]+)', page)[1]
    times = []
    for i in range(30):
        start = time.perf_counter()
        opener.open(urllib.request.Request(
            url + "/console/send", data=json.dumps({"text": f"example say hello B{i}"}).encode(),
            headers={"Content-Type": "application/json", "X-CSRF-Token": csrf})).read()
        while True:
            messages = json.loads(opener.open(url + "/console/poll").read())["messages"]
            if any(f"Hello B{i}" in m["text"] for m in messages):
                break
            time.sleep(0.005)
        times.append(time.perf_counter() - start)
    print(f"console send -> report readable (polling every 5 ms): {percentiles(times)}")

    start = time.perf_counter()
    for _ in range(100):
        urllib.request.urlopen(url + "/metrics").read()
    jobs = len(service.queue.history(100_000))
    print(f"/metrics scrape with {jobs} jobs: {(time.perf_counter() - start) * 10:.1f} ms each")
    dispatcher.stop()
    server.close()


if __name__ == "__main__":
    main()
