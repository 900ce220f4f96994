"""The monitored clusters in chat (`cluster status`, `cluster history`), on the dashboard's
Clusters page and in /metrics, from what the poller stored."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from chatops import monitor_store as store
from chatops.cluster_status import offline, snapshot
from chatops.commands import CommandHandler, Incoming
from chatops.events import Requester
from chatops.slurm.listing import Node
from tests.support.web import web_service
from tests.webserver.test_dashboard import browser  # noqa: F401  (the fixture)
from webserver.app import create_app

CONFIG = '''
raw_config = {}
clusters = {name: {"host": "h", "user": "u", "key_file": "k", "known_hosts": "kh"}
            for name in ("saga", "fram")}
monitors = {"saga": {"cadence": "1m", "targets": ["console:ops"]},
            "fram": {"cadence": "5m", "targets": ["console:ops"]}}
'''


def poll(service, cluster: str, snap, at: float, prev=None) -> store.State:
    """What the poller stores after a poll at ``at``."""
    from dispatcher.monitor import Poll, advance

    monitor = service.config.monitors[cluster]
    outcome = advance(prev, Poll(snap if snap.state != "offline" else None, snap.error, 0.25),
                      monitor, at)
    assert store.take_lease(service.queue.engine, cluster, "test", at, 60)
    assert store.save(service.queue.engine, cluster, "test", outcome.state, outcome.transitions,
                      at)
    return outcome.state


def node(name: str, state: str, flags: tuple[str, ...] = (), reason: str = "") -> Node:
    display = "drained" if "DRAIN" in flags else state
    return Node(name, state, flags, display, cpus=4, alloc_cpus=0, partitions=("batch",),
                reason=reason)


def ask(service, text: str) -> str:
    who = Requester(platform="console", user="alice", channel="c1", user_name="alice",
                    is_direct=True, is_guest=False)
    response = CommandHandler(service.settings, service.config, service.queue).handle(
        Incoming(who, text))
    return "\n".join(r.text for r in response.replies)


def test_status_history_page_and_metrics_tell_the_same_story(tmp_path: Path) -> None:
    config = tmp_path / "job_configs.py"
    config.write_text(CONFIG)
    service = web_service(tmp_path / "home", config=config, CHATOPS_WEB_TOKEN="pages-token",
                          CHATOPS_METRICS_PUBLIC="true")
    now = time.time()
    start = now - 10 * 3600
    state = poll(service, "saga", snapshot([node("c1", "idle"), node("c2", "idle")]), start)
    for at in (now - 4 * 3600, now - 4 * 3600 + 60):  # 2 failed polls: offline since the 1st
        state = poll(service, "saga", offline("cluster saga unreachable: connection refused"),
                     at, state)
    state = poll(service, "saga", snapshot([node("c1", "idle"),
                                            node("c2", "idle", ("DRAIN",), "disk replace")]),
                 now - 3 * 3600, state)

    everything = ask(service, "cluster status")
    assert everything.startswith("Monitored clusters (2); `cluster status <name>` shows one:")
    assert ("• 🟡 saga degraded for 3 h, 1 problem node(s); uptime: 90.0 % (24 h), "
            "90.0 % (7 d)") in everything
    assert "• fram: not polled yet (every 5m)" in everything
    one = ask(service, "cluster status SAGA")
    assert one.startswith("🟡 saga: DEGRADED for 3 h (since ")
    assert "• c2 drained: 'disk replace'" in one and "batch" in one
    assert "Uptime: 90.0 % (24 h), 90.0 % (7 d)" in one
    assert "⚠️ no poll for 3 h (every 1m): is a dispatcher running?" in one
    assert ask(service, "cluster status nope") == (
        "There is no monitored cluster `nope` (monitored: `saga`, `fram`).")
    history = ask(service, "cluster history saga 7d").splitlines()
    assert history[0] == "Changes on `saga` in the last 7d (4):"
    assert re.fullmatch(r"\S+ \S+ \S+ cluster first poll: online", history[1])
    assert history[2].endswith("cluster online → offline (cluster saga unreachable: "
                               "connection refused)")
    assert history[3].endswith("cluster offline → degraded (c2 drained)")
    assert history[4].endswith("c2 drained: 'disk replace'")
    assert ask(service, "cluster history saga 1y").startswith(
        "Sorry, I didn't understand `cluster history saga 1y`. Use `cluster status [name]` or "
        "`cluster history <name> [24h|7d]`")

    client = create_app(service).test_client()
    client.get("/login?token=pages-token")
    page = client.get("/clusters").text
    assert "saga: DEGRADED for 3 h" in page
    assert "Uptime 90.0 % (24 h), 90.0 % (7 d)" in page
    assert "Timeline (4 changes)" in page and "c2 drained: &#39;disk replace&#39;" in page
    assert "fram: not polled yet" in page
    unknown = client.get("/clusters?window=3d")
    assert unknown.status_code == 400
    assert "<p>There is no window &#39;3d&#39;; the windows are 24h, 7d.</p>" in unknown.text

    metrics = client.get("/metrics").text
    assert 'chatops_cluster_up{cluster="saga"} 1.0' in metrics
    assert 'chatops_cluster_nodes{cluster="saga",state="drained"} 1.0' in metrics
    assert 'chatops_cluster_nodes{cluster="saga",state="idle"} 1.0' in metrics
    assert 'chatops_cluster_poll_seconds{cluster="saga"} 0.25' in metrics
    assert 'cluster="fram"' not in metrics


@pytest.mark.slow
def test_the_clusters_page_fits_a_phone_and_a_desktop(tmp_path: Path, browser) -> None:  # noqa: F811
    from tests.support.web import LiveWeb

    config = tmp_path / "job_configs.py"
    config.write_text(CONFIG)
    service = web_service(tmp_path / "home", config=config, CHATOPS_WEB_TOKEN="pages-token")
    now = time.time()
    many = [node(f"compute-{i:03d}", "idle") for i in range(40)]
    state = poll(service, "saga", snapshot(many), now - 600)
    poll(service, "saga", snapshot(many[:-1] + [node("compute-039", "idle", ("DRAIN",),
                                                     "disk replace " + "x" * 200)]), now, state)
    live = LiveWeb(service, dispatcher=False)
    try:
        for viewport in ({"width": 390, "height": 844}, {"width": 1280, "height": 800}):
            page = browser.new_page(viewport=viewport)
            page.goto(f"{live.url}/login?token=pages-token")
            page.goto(f"{live.url}/clusters")
            assert "saga: DEGRADED for" in page.inner_text("#cluster-saga")
            wide, screen = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]")
            assert wide <= screen, f"the Clusters page is {wide} px wide on a {screen} px screen"
            page.close()
    finally:
        live.close()
