"""The telemetry feed: the dispatcher reads back what the telemetry daemons publish.

For each entry of ``telemetry['feeds']`` (the daemons' cluster name -> a cluster of ``clusters``)
one consumer (group ``telemetry['group']``, offsets committed, so a restart resumes where the
last one stopped; a new group starts at the newest messages) reads two topics:

- ``<cluster>.cluster`` (the master's partitions and node states): the latest is stored
  (``telemetry_clusters``), and a monitor with ``"source": "kafka"`` (dispatcher/monitor.py)
  reads it instead of running ``sinfo`` over SSH — whichever dispatcher's consumer got the
  topic. Sonar's envelope has no reasons, so none are shown.
- ``<cluster>.job`` (sacct records, delta-coded or not, rebuilt by ``JobRebuilder``): when a
  job's state changes, the chat-submitted batch job it belongs to is looked at at once rather
  than at its next poll.

Envelopes that are not JSON, or carry ``errors``, are logged and skipped; a broker that does not
answer is logged once a minute and retried by librdkafka.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError
from sqlalchemy import select

from chatops import monitor_store
from chatops.cluster_status import Snapshot, snapshot
from chatops.db import reading, slurm_submissions
from chatops.kafka import client_config
from chatops.queue import Queue
from chatops.slurm.listing import node_from_states
from chatops.slurm.parse import expand_nodelist
from chatops.telemetry_config import TelemetrySpec
from dispatcher.telemetry.delta import JobRebuilder
from dispatcher.telemetry.jobs import FINAL_STATES
from dispatcher.telemetry.kafka import _ErrorLog

log = logging.getLogger("chatops.telemetry_feed")


def cluster_snapshot(attributes: dict) -> Snapshot:
    """The monitor's view of a ``cluster`` envelope's attributes."""
    partitions: dict[str, list[str]] = {}
    for part in attributes.get("partitions") or []:
        for item in part.get("nodes") or []:
            for name in expand_nodelist(item):
                partitions.setdefault(name, []).append(part.get("name", ""))
    nodes = [node_from_states(name, group.get("states") or [], partitions.get(name, ()))
             for group in attributes.get("nodes") or []
             for item in group.get("names") or [] for name in expand_nodelist(item)]
    return snapshot(nodes)


class Feed:
    def __init__(self, spec: TelemetrySpec, queue: Queue,
                 wake_runs: Callable[[set[int]], None]):
        self.spec = spec
        self.queue = queue
        self.wake_runs = wake_runs
        self.topics = {spec.topic(theirs, kind): (ours, kind)
                       for theirs, ours in spec.feeds for kind in ("cluster", "job")}
        self._jobs: dict[str, JobRebuilder] = {}
        self._job_states: dict[tuple[str, int], str] = {}
        self._stopped = threading.Event()
        self._errors = _ErrorLog(" (the telemetry feed retries)")
        self._consumer: Consumer | None = None
        self._thread = threading.Thread(target=self._run, name="telemetry-feed", daemon=True)

    def start(self) -> Feed:
        self._consumer = Consumer({
            **client_config(self.spec.broker_settings()), "group.id": self.spec.group,
            "auto.offset.reset": "latest", "enable.auto.commit": True,
            "error_cb": self._errors})
        self._consumer.subscribe(list(self.topics))
        self._thread.start()
        log.info("telemetry feed: reading %s", ", ".join(sorted(self.topics)))
        return self

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            while not self._stopped.is_set():
                message = self._consumer.poll(0.5)
                if message is None:
                    continue
                if message.error():
                    if message.error().code() != KafkaError._PARTITION_EOF:
                        self._errors.say(f"telemetry feed {message.topic()}: "
                                         f"{message.error().str()}")
                    continue
                try:
                    self.handle(message.topic(), message.value())
                except Exception:  # one bad envelope must not end the feed
                    log.exception("telemetry feed: %s: could not use an envelope",
                                  message.topic())
        finally:
            self._consumer.close()  # commits the offsets read

    def handle(self, topic: str, value: bytes) -> None:
        ours, kind = self.topics[topic]
        try:
            envelope = json.loads(value)
        except ValueError:
            log.warning("telemetry feed: %s: not JSON, skipped", topic)
            return
        if not isinstance(envelope, dict) or "data" not in envelope:
            errors = envelope.get("errors") if isinstance(envelope, dict) else None
            log.warning("telemetry feed: %s: %s", topic, errors or "no data, skipped")
            return
        if kind == "cluster":
            monitor_store.feed(self.queue.engine, ours,
                               cluster_snapshot(envelope["data"].get("attributes") or {}),
                               time.time())
        else:
            self._wake_changed(ours, envelope)

    def _wake_changed(self, ours: str, envelope: dict) -> None:
        rebuilder = self._jobs.setdefault(ours, JobRebuilder())
        changed = set()
        for key in rebuilder.apply(envelope):
            state = rebuilder.steps[key].record.get("job_state", "")
            job_id = key[0]
            if key[1] == "" and self._job_states.get((ours, job_id)) != state:
                self._job_states[(ours, job_id)] = state
                changed.add(job_id)
            if state in FINAL_STATES:  # it will not change again: forget it
                rebuilder.steps.pop(key, None)
                if key[1] == "":
                    self._job_states.pop((ours, job_id), None)
        if not changed:
            return
        with reading(self.queue.engine) as conn:
            ours_jobs = {row.job_id for row in conn.execute(
                select(slurm_submissions.c.job_id).where(
                    slurm_submissions.c.cluster == ours,
                    slurm_submissions.c.slurm_job_id.in_(sorted(changed)),
                    slurm_submissions.c.ended_at.is_(None)))}
        if ours_jobs:
            log.info("telemetry feed: Slurm says jobs %s of %s changed: looking at them",
                     ", ".join(map(str, sorted(ours_jobs))), ours)
            self.wake_runs(ours_jobs)
