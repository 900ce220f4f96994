"""Send what the outbound table holds for one platform: per-target queues, rate limits, leases.

Each target (a chat, room, address; a thread in it) has its own in-memory queue, loaded from
the database; at most one message per target is in flight, and a target is not sent to again
before its interval has passed (or its ``Retry-After``). Other targets never wait for it: a
target that keeps failing only delays itself (no head-of-line blocking). Sending happens on a
thread pool.

Before it sends, a row is claimed: a lease (``chatops/outbound.py``), so several senders for a
platform never send it twice and a sender that dies mid-send loses nothing — the row comes due
again when the lease ends and resumes after the steps its progress records. A failed attempt is
rescheduled (``Retry-After`` when the platform gave one, else exponential backoff with jitter).
A ``Retry-After`` is the platform saying "later", not a failure: it never counts toward the
attempt limit, but a row throttled for longer than ``max_wait`` in all is given up. After the
last attempt (or an error no retry can help) the row is a dead letter, the error is recorded on
its job, and for a report a short "could not deliver" notice is tried once.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import select
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, Row

from chatops import outbound, storage, wakeup
from chatops.notify.config import NotifyConfig, load_notify_config
from chatops.platform import Delivery, DeliveryError, Platform
from chatops.report import notice
from chatops.service import Service

log = logging.getLogger("chatops.sender")

RESCAN_SECONDS = 1.0  # re-read every due id (re-pended by hand or by an edit, a lease ended)
MAX_SLEEP = 0.5
TOPIC = "outbox"  # wakeup topic: producers poke every sender with it


def backoff(attempt: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential, at a random point in its upper half."""
    return min(cap, base * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


@dataclass
class Item:
    id: int
    target: str
    due: float


@dataclass
class Result:
    key: str
    item: Item
    row: Row
    error: DeliveryError | None = None


class Sender:
    def __init__(self, engine: Engine, platform: Platform, cfg: NotifyConfig, *,
                 attempts: int | None = None, workers: int = 16,
                 lease: float = outbound.LEASE_SECONDS, poll_interval: float = 1.0,
                 run_dir: Path | None = None):
        self.engine = engine
        self.platform = platform
        self.name = platform.name
        self.cfg = cfg
        self.attempts = attempts or cfg.attempts
        self.lease = lease
        self.poll_interval = poll_interval
        self.run_dir = run_dir  # wake-ups on the "outbox" topic: a new row elsewhere
        self.outage = storage.Outage(f"the {platform.name} sender", (
            "nothing is sent", "nothing was sent"))
        self.queues: dict[str, deque[Item]] = {}
        self.target_free: dict[str, float] = {}
        # The platform's rate: a bucket of one second's messages, so a lone message never
        # waits and a burst is spread at per_second.
        self.tokens = 0.0
        self.tokens_at = 0.0
        self.in_flight: set[str] = set()
        self.known: set[int] = set()
        self.max_id = 0
        self.results: queue.Queue[Result | None] = queue.Queue()
        self.pool = ThreadPoolExecutor(max_workers=workers,
                                       thread_name_prefix=f"send-{platform.name}")
        self.poked = threading.Event()
        self._next_load = 0.0
        self._next_rescan = 0.0
        self._delivered: list[tuple[int, int]] = []  # (id, revision sent)

    @classmethod
    def for_service(cls, service: Service, platform: Platform) -> Sender:
        """The sender with the site's settings: ``notifications`` rate limits, backoff and
        max_wait; CHATOPS_DELIVERY_ATTEMPTS unless ``notifications["attempts"]`` is set."""
        raw = dict(service.config.notifications)
        cfg = load_notify_config(raw, service.settings.environ)
        attempts = cfg.attempts if "attempts" in raw else service.settings.delivery_attempts
        return cls(service.queue.engine, platform, cfg, attempts=attempts,
                   lease=min(outbound.LEASE_SECONDS, platform.lease_seconds),
                   poll_interval=service.settings.poll_interval,
                   run_dir=service.settings.run_dir)

    def poke(self) -> None:
        """New rows were added: look at once."""
        self.poked.set()
        self.results.put(None)

    # -- loading ----------------------------------------------------------------------------

    def _load(self, now: float) -> None:
        self._next_load = now + self.poll_interval
        if now >= self._next_rescan:
            self._next_rescan = now + RESCAN_SECONDS
            ids = outbound.waiting_ids(self.engine, self.name, now) - self.known
            if ids:  # re-pended by hand, or a dead sender's lease ended: load those again
                self.max_id = min(self.max_id, min(ids) - 1)
        for row in outbound.waiting(self.engine, self.name, self.max_id, now):
            self.max_id = max(self.max_id, row.id)
            if row.id in self.known:
                continue
            self.known.add(row.id)
            due = row.next_attempt_at if row.state == "pending" else now
            # A target is a chat, room or address, and a thread in it: one thread's replies
            # (a job's report) never wait behind another's.
            target = f"{row.channel or ''}#{row.thread}" if row.thread else row.channel or ""
            self.queues.setdefault(target, deque()).append(Item(row.id, target, due))

    # -- scheduling -------------------------------------------------------------------------

    def _start_due(self, now: float) -> float:
        """Claim and start every sendable head item (one transaction for all of them); return
        when the next one becomes sendable."""
        wake = now + MAX_SLEEP
        limit = self.cfg.rate_limit(self.name)
        if limit.per_second > 0:
            self.tokens = min(max(1.0, limit.per_second),
                              self.tokens + (now - self.tokens_at) * limit.per_second)
            self.tokens_at = now
        starting: list[tuple[str, Item]] = []
        for key, items in self.queues.items():
            if not items or key in self.in_flight:
                continue
            ready = max(items[0].due, self.target_free.get(key, 0.0))
            if limit.per_second > 0 and self.tokens < 1.0:
                ready = max(ready, now + (1.0 - self.tokens) / limit.per_second)
            if ready > now:
                wake = min(wake, ready)
                continue
            starting.append((key, items.popleft()))
            self.target_free[key] = now + limit.per_target
            if limit.per_second > 0:
                self.tokens -= 1.0
        if not starting:
            return wake
        rows = {row.id: row for row in outbound.claim_many(
            self.engine, [item.id for _, item in starting], self.lease)}
        for key, item in starting:
            row = rows.get(item.id)
            if row is None:  # another sender has it (or it was dropped): a rescan finds it
                self.known.discard(item.id)
                continue
            self.in_flight.add(key)
            self.pool.submit(self._send, key, item, row)
        return wake

    def _send(self, key: str, item: Item, row: Row) -> None:
        result = Result(key, item, row)
        try:
            self._deliver(row)
        except DeliveryError as exc:
            result.error = exc
        except Exception as exc:  # a bug or an SDK surprise: still never lose the item
            log.exception("delivery %s to %s failed unexpectedly", item.id, self.name)
            result.error = DeliveryError(f"{type(exc).__name__}: {exc}")
        self.results.put(result)

    def _deliver(self, row: Row) -> None:
        delivery = Delivery.from_row(row, lambda progress: outbound.save_progress(
            self.engine, row.id, json.dumps(progress)))
        if delivery.progress:
            log.info("delivery %s to %s resumes after %d step(s) already sent", row.id,
                     self.name, len(delivery.progress))
        self.platform.deliver(delivery)

    def _finished(self, result: Result) -> None:
        key, item, row, error = result.key, result.item, result.row, result.error
        self.in_flight.discard(key)
        now = time.time()
        # Counted from the answer: the service counts arrivals, and the request may have
        # reached it late (a slow connect); this costs one round trip per interval.
        spacing = self.cfg.rate_limit(self.name).per_target
        self.target_free[key] = max(self.target_free.get(key, 0.0), now + spacing)
        if error is None:
            self._delivered.append((item.id, row.revision))  # written in one go by step()
            self.known.discard(item.id)
            return
        throttled = error.retry_after is not None and not error.permanent
        attempts = row.attempts - 1 if throttled else row.attempts  # a 429 is not a failure
        wait = error.retry_after if throttled else backoff(
            attempts, self.cfg.backoff_base, self.cfg.backoff_max)
        assert wait is not None
        waited_too_long = throttled and now + wait - row.created_at > self.cfg.max_wait
        if error.permanent or attempts >= self.attempts or waited_too_long:
            why = (f"still throttled after {self.cfg.max_wait:g} s" if waited_too_long
                   else f"after {attempts} attempt(s)")
            log.error("delivery %s to %s:%s dead-lettered %s: %s", item.id, self.name,
                      item.target, why, error)
            self.known.discard(item.id)
            dead = outbound.dead(self.engine, item.id, str(error), attempts)
            if dead is not None and json.loads(dead.payload).get("kind") == "report":
                self.pool.submit(self._could_not_deliver, dead, str(error))
            return
        if throttled:  # the whole target (chat) is throttled, not one row
            self.target_free[key] = max(self.target_free[key], now + wait)
        item.due = now + wait
        log.warning("delivery %s to %s:%s failed (attempt %d): %s; retrying in %.1f s",
                    item.id, self.name, item.target, attempts, error, wait)
        outbound.retry(self.engine, item.id, item.due, str(error), attempts)
        self.queues.setdefault(key, deque()).appendleft(item)  # keep the target's order

    def _could_not_deliver(self, row: Row, error: str) -> None:
        text = (f"Could not deliver the report of job {row.job_id}: {error[:200]}. "
                f"`logs {row.job_id}` shows its output.")
        fallback = Delivery(id=row.id, platform=row.platform, channel=row.channel,
                            thread=row.thread, message=None, is_direct=bool(row.is_direct),
                            payload=notice(text), attempts=1, job_id=row.job_id)
        try:
            self.platform.deliver(fallback)
        except Exception as exc:  # nothing more we can do; it is recorded on the job
            log.error("the could-not-deliver notice for job %s failed too: %s", row.job_id, exc)

    # -- running ----------------------------------------------------------------------------

    def step(self, timeout: float = MAX_SLEEP) -> None:
        now = time.time()
        if self.poked.is_set() or now >= self._next_load:
            self.poked.clear()
            self._load(now)
        wake = self._start_due(now)
        try:
            result = self.results.get(timeout=max(0.0, min(timeout, wake - time.time())))
        except queue.Empty:
            return
        while True:
            if result is not None:
                self._finished(result)
            try:
                result = self.results.get_nowait()
            except queue.Empty:
                break
        self._flush()

    def _flush(self) -> None:
        if self._delivered:
            if outbound.delivered_many(self.engine, self._delivered):
                self._next_rescan = 0.0  # edited while in flight: send the newest text now
                self._next_load = 0.0
            self._delivered = []

    def idle(self) -> bool:
        return not self.in_flight and not any(self.queues.values())

    def settle(self, timeout: float = 30.0) -> None:
        """Send what is due now and wait for the answers (a one-off run; tests)."""
        deadline = time.time() + timeout
        self._load(time.time())
        while time.time() < deadline:
            self.step(0.05)
            now = time.time()
            if not self.in_flight and all(not q or max(
                    q[0].due, self.target_free.get(k, 0.0)) > now for k, q in self.queues.items()):
                return
        raise TimeoutError(f"the {self.name} sender did not settle in {timeout:g} s")

    def run(self, stop: threading.Event) -> None:
        """Send until ``stop``; a wake-up on the ``outbox`` topic (a new row from another
        process) is a poke."""
        listener = wakeup.Listener(self.run_dir, TOPIC) if self.run_dir is not None else None
        if listener is not None:
            threading.Thread(target=self._listen, args=(listener, stop), daemon=True,
                             name=f"wake-{self.name}").start()
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception as exc:  # a full disk: wait for room, never die of it
                    if not self.outage.failed(exc):
                        raise
                    stop.wait(self.poll_interval)
                else:
                    self.outage.recovered()
                    self.outage.held.clear()  # (the dispatcher tells the admins)
        finally:
            self.close()
            if listener is not None:
                listener.close()

    def _listen(self, listener: wakeup.Listener, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                readable, _, _ = select.select([listener], [], [], MAX_SLEEP)
                if readable:
                    listener.drain()
                    self.poke()
            except (OSError, ValueError):  # closed at shutdown
                return

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        while not self.results.empty():  # record what finished meanwhile
            result = self.results.get_nowait()
            if result is not None:
                self._finished(result)
        self._flush()
