"""``/metrics`` (Prometheus) and ``/healthz``: no login, no secrets, no logs.

``/metrics`` names namespaces, so it answers only ``Authorization: Bearer
$CHATOPS_METRICS_TOKEN`` (Prometheus' ``authorization`` setting), unless a site that keeps the
port private says ``CHATOPS_METRICS_PUBLIC=true``. ``/healthz`` says only ok or not, to anyone:
whether the database can be read and written (a write rolled back, and the free space next to a
SQLite file), and whether a dispatcher is alive.
Job figures are read from the database at scrape time, so every web process reports the same
numbers whichever process ran the jobs. Webhook answers are counted in this process.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy import and_, case, func, select, text

from chatops import monitor_store, storage
from chatops.db import deliveries, dispatchers, jobs, reading, webhook_deliveries
from chatops.queue import STALE_AFTER_SECONDS, Queue
from chatops.service import Service

DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600)
_EVENT = re.compile(r"^[a-z_]{1,50}$")

log = logging.getLogger("chatops.web")
bp = Blueprint("ops", __name__)


class QueueCollector:
    """Jobs, queue depth, durations, deliveries and dispatchers, straight from the database."""

    def __init__(self, queue: Queue):
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        with reading(self.queue.engine) as conn:
            by_state = conn.execute(select(jobs.c.namespace, jobs.c.state, func.count())
                                    .group_by(jobs.c.namespace, jobs.c.state)).all()
            depth = conn.execute(select(func.count()).select_from(jobs).where(
                jobs.c.state == "queued", jobs.c.start_after <= now)).scalar_one()
            duration = jobs.c.finished_at - jobs.c.started_at
            ended = and_(jobs.c.started_at.is_not(None), jobs.c.finished_at.is_not(None))
            row = conn.execute(select(
                func.count(), func.coalesce(func.sum(duration), 0.0),
                *[func.sum(case((duration <= b, 1), else_=0)) for b in DURATION_BUCKETS],
            ).where(ended)).one()
            # Console deliveries wait for their session to read them: not a delivery backlog.
            delivery_rows = conn.execute(select(deliveries.c.platform, deliveries.c.state,
                                                func.count())
                                         .where(deliveries.c.state.in_(("dead", "pending",
                                                                        "sending")),
                                                deliveries.c.platform != "console")
                                         .group_by(deliveries.c.platform,
                                                   deliveries.c.state)).all()
            beat = conn.execute(select(func.max(dispatchers.c.heartbeat_at))
                                .where(dispatchers.c.stopped_at.is_(None))).scalar()
            hooks = conn.execute(select(webhook_deliveries.c.event, webhook_deliveries.c.outcome,
                                        func.count())
                                 .group_by(webhook_deliveries.c.event,
                                           webhook_deliveries.c.outcome)).all()

        gauge = GaugeMetricFamily("chatops_jobs", "Jobs in the queue's history by namespace and "
                                  "state", labels=["namespace", "state"])
        for namespace, state, count in by_state:
            gauge.add_metric([namespace, state], count)
        yield gauge
        yield GaugeMetricFamily("chatops_queue_depth", "Queued jobs that are due to start now",
                                value=depth)
        count, total, *cumulative = row
        buckets = [(str(b), int(c or 0)) for b, c in zip(DURATION_BUCKETS, cumulative,
                                                           strict=True)]
        buckets.append(("+Inf", int(count)))
        yield HistogramMetricFamily("chatops_job_duration_seconds", "How long ended jobs ran",
                                    buckets=buckets, sum_value=float(total or 0.0))
        failed = CounterMetricFamily("chatops_delivery_failures", "Reports, notices and Slurm "
                                     "notifications given up on (dead letters)",
                                     labels=["platform"])
        pending = GaugeMetricFamily("chatops_deliveries_pending", "Messages (reports, notices, "
                                    "notifications) waiting to be sent or being sent (console: "
                                    "not counted)",
                                    labels=["platform"])
        waiting: dict[str, int] = {}
        for platform, state, n in delivery_rows:
            if state == "dead":
                failed.add_metric([platform], n)
            else:
                waiting[platform] = waiting.get(platform, 0) + n
        for platform, n in waiting.items():
            pending.add_metric([platform], n)
        yield failed
        yield pending
        yield GaugeMetricFamily("chatops_dispatcher_heartbeat_age_seconds", "Seconds since the "
                                "freshest dispatcher heartbeat (-1: none running)",
                                value=(now - beat) if beat is not None else -1)
        handled = CounterMetricFamily("chatops_github_deliveries", "GitHub deliveries remembered, "
                                      "by event and outcome", labels=["event", "outcome"])
        for event, outcome, n in hooks:
            handled.add_metric([event, outcome], n)
        yield handled


class ClusterCollector:
    """The monitored clusters, from their latest poll (whichever dispatcher made it)."""

    def __init__(self, service: Service):
        self.service = service

    def collect(self) -> Iterator[Metric]:
        monitors = self.service.config.monitors  # (live config may swap it)
        states = monitor_store.states(self.service.queue.engine) if monitors else {}
        up = GaugeMetricFamily("chatops_cluster_up", "1 when the cluster answers (online or "
                               "degraded), 0 when offline", labels=["cluster"])
        nodes = GaugeMetricFamily("chatops_cluster_nodes", "Nodes by state, from the latest "
                                  "successful poll", labels=["cluster", "state"])
        latency = GaugeMetricFamily("chatops_cluster_poll_seconds", "How long the latest poll "
                                    "took", labels=["cluster"])
        age = GaugeMetricFamily("chatops_cluster_poll_age_seconds", "Seconds since the latest "
                                "poll", labels=["cluster"])
        now = time.time()
        for name in monitors:
            state = states.get(name)
            if state is None:
                continue  # not polled yet: no figure rather than a wrong one
            up.add_metric([name], 0 if state.snapshot.state == "offline" else 1)
            for node_state, count in sorted(state.snapshot.nodes_by_state().items()):
                nodes.add_metric([name, node_state], count)
            if state.poll_seconds is not None:
                latency.add_metric([name], state.poll_seconds)
            age.add_metric([name], now - state.polled_at)
        yield from (up, nodes, latency, age)


class Metrics:
    """One registry per app (tests make several apps in one process)."""

    def __init__(self, queue: Queue, service: Service | None = None):
        self.registry = CollectorRegistry()
        self.registry.register(QueueCollector(queue))
        if service is not None:
            self.registry.register(ClusterCollector(service))
        self.webhooks = Counter("chatops_webhook_requests", "Webhook requests answered, by "
                                "event and outcome", ["event", "outcome"], registry=self.registry)

    def webhook_answered(self, event: str, outcome: str) -> None:
        # Unsigned requests choose their own headers: never let them invent label values.
        trusted = outcome not in ("bad_signature", "disabled", "unknown_namespace")
        label = event if trusted and _EVENT.match(event) else "-"
        self.webhooks.labels(label, outcome).inc()


def _metrics_refusal() -> str | None:
    """Why this scrape may not see the figures (None: it may)."""
    env = current_app.extensions["chatops.service"].settings.environ
    if (env.get("CHATOPS_METRICS_PUBLIC") or "").strip().lower() in ("1", "true", "yes", "on"):
        return None
    token = env.get("CHATOPS_METRICS_TOKEN") or ""
    if not token:
        return ("/metrics is closed: set CHATOPS_METRICS_TOKEN and send it as "
                "'Authorization: Bearer <token>' (or CHATOPS_METRICS_PUBLIC=true where only "
                "trusted hosts reach this port).")
    sent = request.headers.get("Authorization", "")
    if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return None
    return "/metrics needs 'Authorization: Bearer <CHATOPS_METRICS_TOKEN>'."


@bp.get("/metrics")
def metrics():
    refused = _metrics_refusal()
    if refused:
        return Response(refused + "\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="chatops metrics"'})
    registry = current_app.extensions["chatops.metrics"].registry
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")


@bp.get("/healthz")
def healthz():
    queue: Queue = current_app.extensions["chatops.service"].queue
    now = time.time()
    checks: dict[str, object] = {"process": "ok"}
    try:
        with reading(queue.engine) as conn:
            conn.execute(text("SELECT 1"))
            beat = conn.execute(select(func.max(dispatchers.c.heartbeat_at))
                                .where(dispatchers.c.stopped_at.is_(None))).scalar()
        cannot = storage.probe(queue.engine)  # reading is not enough: can it store?
        checks["database"] = "ok" if cannot is None else f"cannot write ({cannot.short})"
    except Exception as exc:  # report it; never crash the probe
        found = storage.fault(exc)
        checks["database"] = (f"unreachable ({type(exc).__name__})" if found is None
                              else f"cannot be used ({found.short})")
        beat = None
    _log_change(checks["database"])
    if beat is None:
        checks["dispatcher"] = "none running"
    elif now - beat > STALE_AFTER_SECONDS:
        checks["dispatcher"] = f"stale (last heartbeat {now - beat:.0f} s ago)"
    else:
        checks["dispatcher"] = "ok"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "unhealthy", checks=checks), 200 if healthy else 503


def _log_change(database: str) -> None:
    """Say in the log when the database stops (or starts again) being usable, once."""
    before = current_app.extensions.get("chatops.health.database", "ok")
    if database == before:
        return
    current_app.extensions["chatops.health.database"] = database
    if database == "ok":
        log.warning("/healthz: the database can be written again")
    else:
        log.error("/healthz: the database %s", database)
