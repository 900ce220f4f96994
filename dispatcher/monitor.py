"""The cluster monitor: each configured cluster polled at its cadence, changes posted.

One thread per monitored cluster, so a cluster that hangs or refuses delays nothing else (nor
the dispatcher's loop, nor jobs). At each instant of its cadence (zero modulo it, so every
dispatcher computes the same ones) the thread takes or renews the cluster's lease in the
database; only the holder polls, so however many dispatchers run, each cluster is polled once
and nothing is posted twice; a holder that dies lets its lease expire and another takes over.

A poll is ``sinfo --json`` through the Slurm client on the cluster's pooled SSH connection,
bounded by the monitor's ``timeout``. Its result is compared with the stored state
(chatops/cluster_status.py): a change is posted to every target (chatops/monitor_texts.py),
recorded in the history, and the stored state replaced — all while the lease is still held.
A failed poll counts; ``offline_after`` of them in a row make the cluster offline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from queue import SimpleQueue

from chatops import monitor_store as store
from chatops import wakeup
from chatops.cadence import next_instant
from chatops.cluster_config import ClusterSpec
from chatops.cluster_status import Change, Snapshot, changes, offline, snapshot
from chatops.job_config import Config
from chatops.monitor_config import MonitorSpec
from chatops.monitor_texts import Clock, board_text, change_text, payload
from chatops.queue import Queue
from chatops.redact import redact
from chatops.settings import Settings
from chatops.slurm.client import SlurmClient, SlurmError
from dispatcher.ssh import SSHPool

log = logging.getLogger("chatops.monitor")

LEASE_MARGIN = 5.0  # seconds a lease outlives the longest gap between two renewals
DATABASE_SLOTS = 3  # monitor threads using the database at once


@dataclass(frozen=True)
class Poll:
    snapshot: Snapshot | None  # None: the poll failed
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Outcome:
    state: store.State
    change: Change | None
    transitions: list[dict]


def advance(prev: store.State | None, poll: Poll, spec: MonitorSpec, now: float,
            failures_before: int = 0) -> Outcome | None:
    """The new state after ``poll`` (None: nothing known yet, the first polls failed)."""
    failures = 0 if poll.snapshot else (prev.failures if prev else failures_before) + 1
    if poll.snapshot is not None:
        snap = poll.snapshot
    elif failures >= spec.offline_after:
        snap = offline(poll.error)
    elif prev is not None:
        snap = prev.snapshot  # one failed poll is not an outage
    else:
        return None
    old = prev.snapshot if prev else None
    changed = old is None or old.state != snap.state
    since = now if changed else prev.since
    clock = Clock(spec.timezone, now)
    change = changes(old, snap, clock)
    state = store.State(snap, since, failures, poll.error, now, poll.seconds,
                        prev.first_polled_at if prev else now)
    return Outcome(state, change, _transitions(old, snap, now) if change else [])


def _transitions(old: Snapshot | None, new: Snapshot, now: float) -> list[dict]:
    rows = []
    if old is None or old.state != new.state:
        reason = new.error or "; ".join(f"{p.name} {p.state}" for p in new.problems) or None
        rows.append(dict(node=None, from_state=old.state if old else None, to_state=new.state,
                         reason=reason, at=now))
    if new.state == "offline":
        return rows
    # (after an outage nothing is known of the nodes before it: each problem is news)
    before = {p.name: p for p in old.problems} if old and old.state != "offline" else {}
    for problem in new.problems:
        was = before.get(problem.name)
        if was is None or (was.state, was.reason) != (problem.state, problem.reason):
            rows.append(dict(node=problem.name, from_state=was.state if was else "ok",
                             to_state=problem.state, reason=problem.reason or None, at=now))
    for name, was in before.items():
        if new.problem(name) is None:
            rows.append(dict(node=name, from_state=was.state, to_state="ok",
                             reason=new.node_states.get(name), at=now))
    return rows


class Watch:
    """One cluster's poller thread."""

    def __init__(self, owner: Monitors, spec: MonitorSpec, cluster: ClusterSpec):
        self.owner = owner
        self.spec = spec
        self.cluster = cluster
        self.stopped = threading.Event()
        self._failures = 0  # failed polls before anything was known of the cluster
        self.started_at = owner.clock()
        self.thread = threading.Thread(target=self._run, name=f"monitor-{spec.cluster}",
                                       daemon=True)

    @property
    def ttl(self) -> float:
        return self.spec.cadence + self.spec.timeout + self.cluster.connect_timeout + LEASE_MARGIN

    def start(self) -> Watch:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        clock = self.owner.clock
        while not self.stopped.is_set():
            due = next_instant(clock(), self.spec.cadence)
            if self.stopped.wait(max(0.0, due - clock())):
                break
            try:
                self.round()
            except Exception:  # the database may be away; the next instant tries again
                log.exception("monitor %s: the poll round failed", self.spec.cluster)

    def round(self) -> None:
        owner, name = self.owner, self.spec.cluster
        engine = owner.queue.engine
        with owner.database:
            if not store.take_lease(engine, name, owner.worker, owner.clock(), self.ttl):
                return
        poll = self.poll()  # (holding no database connection: polls overlap freely)
        if poll is None:  # the telemetry feed has not spoken yet: nothing to say either
            return
        owner.results.put((self, poll))

    def record(self, poll: Poll) -> None:
        """Compare, post, save: in the monitors' one recording thread."""
        owner, name = self.owner, self.spec.cluster
        engine = owner.queue.engine
        now = owner.clock()
        prev = store.load(engine, name)
        outcome = advance(prev, poll, self.spec, now, self._failures)
        if outcome is None:
            self._failures += 1
            log.warning("monitor %s: poll failed (%d of %d before offline): %s", name,
                        self._failures, self.spec.offline_after, poll.error)
            return
        self._failures = 0
        if not store.holds(engine, name, owner.worker, now):
            log.info("monitor %s: another dispatcher took the cluster over", name)
            return
        self.post(prev, outcome, now)
        store.save(engine, name, owner.worker, outcome.state, outcome.transitions, now)

    def poll(self) -> Poll | None:
        if self.spec.source == "kafka":
            return self._fed()
        started = time.monotonic()
        try:
            connection = self.owner.pool().connection(self.spec.cluster)
            nodes = SlurmClient(connection.run, timeout=self.spec.timeout).sinfo()
        except SlurmError as exc:
            if exc.raw:
                log.warning("monitor %s: sinfo answered something unreadable (%s); raw: %s",
                            self.spec.cluster, exc.message, redact(exc.raw[:4000]))
                error = f"sinfo answered something unreadable ({exc.message})"
            else:
                error = str(exc)
            return Poll(None, redact(error), time.monotonic() - started)
        except (ConnectionError, TimeoutError, OSError) as exc:
            return Poll(None, redact(str(exc) or type(exc).__name__), time.monotonic() - started)
        return Poll(snapshot(nodes), seconds=time.monotonic() - started)

    def _fed(self) -> Poll | None:
        """The state the telemetry feed stored (dispatcher/telemetry_feed.py). Data older than
        two cadences and half a minute counts as a failed poll, and so does none at all once
        this watch has waited that long (before: None, nothing to say yet)."""
        fed = store.fed(self.owner.queue.engine, self.spec.cluster)
        now, stale = self.owner.clock(), 2 * self.spec.cadence + 30
        if fed is None:
            if now - self.started_at < stale:
                return None
            return Poll(None, "no cluster state from the telemetry daemons (Kafka) yet")
        if now - fed[0] > stale:
            return Poll(None, "no cluster state from the telemetry daemons (Kafka) for "
                        f"{round(now - fed[0])} s")
        return Poll(fed[1])

    def post(self, prev: store.State | None, outcome: Outcome, now: float) -> None:
        spec, state = self.spec, outcome.state
        clock = Clock(spec.timezone, now)
        board = board_text(spec.cluster, state.snapshot, state.since, now, clock,
                           spec.partitions, state.last_error)
        change = None
        if prev is not None and outcome.change is not None:
            change = change_text(spec.cluster, prev.snapshot, prev.since, state.snapshot,
                                 state.since, outcome.change, clock)
        queue, posted = self.owner.queue, []
        boards = store.boards(queue.engine, spec.cluster)
        for target in spec.targets:
            if target not in boards:  # the first poll, or a target added since: the board
                role, text = "board", board
            elif change is not None:
                role, text = "change", change
            elif spec.post == "every poll":
                role, text = "board", board
            else:
                continue
            platform, _, channel = target.partition(":")
            delivery = queue.add_delivery(
                platform, payload(spec.cluster, role, state.snapshot.state, text),
                channel=channel, now=now)
            if role == "board":
                store.remember_board(queue.engine, spec.cluster, target, delivery, now)
            posted.append(f"{role} to {target}")
        if posted:
            wakeup.notify(self.owner.settings.run_dir, "outbox")
            log.info("monitor %s: %s; %s", spec.cluster, state.snapshot.state, ", ".join(posted))


class Monitors:
    """The watches of the configured monitors; a new config starts, restarts and stops them."""

    def __init__(self, settings: Settings, config: Config, queue: Queue, worker: str,
                 pool: Callable[[], SSHPool], clock: Callable[[], float] = time.time):
        self.settings = settings
        self.config = config
        self.queue = queue
        self.worker = worker
        self.pool = pool
        self.clock = clock
        self._watches: dict[str, Watch] = {}
        self._lock = threading.Lock()
        # The clusters' threads poll at the same instants: their lease transactions take turns,
        # and one thread records every poll's result (the queue keeps a connection per thread
        # that writes), so fifty clusters never drain the engine's connection pool.
        self.database = threading.BoundedSemaphore(DATABASE_SLOTS)
        self.results: SimpleQueue[tuple[Watch, Poll] | None] = SimpleQueue()
        self._recorder = threading.Thread(target=self._record, name="monitor-recorder",
                                          daemon=True)

    def _record(self) -> None:
        while (item := self.results.get()) is not None:
            watch, poll = item
            try:
                watch.record(poll)
            except Exception:  # the database may be away; the next poll tries again
                log.exception("monitor %s: recording the poll failed", watch.spec.cluster)

    def start(self) -> None:
        self._recorder.start()
        self.reconfigure(self.config)

    def reconfigure(self, config: Config) -> None:
        with self._lock:
            self.config = config
            for name, spec in config.monitors.items():
                watch = self._watches.get(name)
                cluster = config.clusters[name]
                if watch is not None and (watch.spec, watch.cluster) == (spec, cluster):
                    continue
                if watch is not None:
                    watch.stop()
                    log.info("monitor %s changed: it polls with the new settings", name)
                self._watches[name] = Watch(self, spec, cluster).start()
            for name in set(self._watches) - set(config.monitors):
                self._watches.pop(name).stop()
                self._release(name)
                log.info("monitor %s removed: it stops", name)

    def close(self) -> None:
        with self._lock:
            watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            watch.stop()
        for watch in watches:
            watch.thread.join(watch.spec.timeout + watch.cluster.connect_timeout + 1)
        if self._recorder.is_alive():
            self.results.put(None)  # after what the watches handed in
            self._recorder.join(30)
        for watch in watches:
            self._release(watch.spec.cluster)

    def _release(self, name: str) -> None:
        try:
            store.release_lease(self.queue.engine, name, self.worker)
        except Exception:  # it expires by itself
            log.exception("monitor %s: could not release the lease", name)
