"""Send queued notifications: one queue per target, rate limits per target and per connector.

Each target (connector + chat/address) has its own in-memory queue, loaded from the database;
at most one message per target is in flight, and a target is not sent to again before its
interval has passed (or its ``Retry-After``). Other targets never wait for it: a target that
keeps failing only delays itself (no head-of-line blocking). A failed attempt is rescheduled
with ``Retry-After`` when given, else exponential backoff with jitter; after ``attempts`` tries
(or a permanent error) the row is dead-lettered. Sending happens on a thread pool.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine

from bot.notify.connectors import Connector
from chatops.notify import store
from chatops.notify.config import NotifyConfig
from chatops.platform import DeliveryError

log = logging.getLogger("chatops.notify")

RESCAN_SECONDS = 5.0  # re-read pending ids (rows re-pended by `chatops notifications retry`)
MAX_SLEEP = 0.5


def backoff(attempt: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential with full jitter's gentler cousin: a random point in the upper half."""
    return min(cap, base * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


@dataclass
class Item:
    id: int
    connector: str
    target: str
    payload: dict
    attempts: int
    due: float
    sent_at: float = 0.0


class NotifySender:
    def __init__(self, engine: Engine, connectors: Mapping[str, Connector], cfg: NotifyConfig,
                 workers: int = 32):
        self.engine = engine
        self.connectors = dict(connectors)
        self.cfg = cfg
        self.queues: dict[tuple[str, str], deque[Item]] = {}
        self.target_free: dict[tuple[str, str], float] = {}
        self.connector_free: dict[str, float] = {}
        self.in_flight: set[tuple[str, str]] = set()
        self.known: set[int] = set()
        self.max_id = 0
        self.results: queue.Queue = queue.Queue()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify-send")
        self.poked = threading.Event()
        self._next_rescan = 0.0
        self._delivered: list[tuple[int, int]] = []

    def poke(self) -> None:
        """New rows were added (by this process): look at once."""
        self.poked.set()
        self._next_rescan = 0.0
        self.results.put(None)

    # -- loading ----------------------------------------------------------------------------

    def _load(self, now: float) -> None:
        if now >= self._next_rescan:
            self._next_rescan = now + RESCAN_SECONDS
            ids = store.pending_ids(self.engine)
            if ids - self.known:  # re-pended by hand: load those again
                self.max_id = min(self.max_id, min(ids - self.known) - 1)
        for row in store.pending(self.engine, self.max_id):
            self.max_id = max(self.max_id, row.id)
            if row.id in self.known:
                continue
            self.known.add(row.id)
            item = Item(row.id, row.connector, row.target, json.loads(row.payload),
                        row.attempts, row.next_attempt_at)
            self.queues.setdefault((row.connector, row.target), deque()).append(item)

    # -- scheduling -------------------------------------------------------------------------

    def _start_due(self, now: float) -> float:
        """Start every sendable head item; return when the next one becomes sendable."""
        wake = now + MAX_SLEEP
        for key, items in self.queues.items():
            if not items or key in self.in_flight:
                continue
            connector = key[0]
            ready = max(items[0].due, self.target_free.get(key, 0.0),
                        self.connector_free.get(connector, 0.0))
            if ready > now:
                wake = min(wake, ready)
                continue
            item = items.popleft()
            limit = self.cfg.rate_limit(connector)
            self.in_flight.add(key)
            self.target_free[key] = now + limit.per_target
            if limit.per_second > 0:
                self.connector_free[connector] = max(
                    self.connector_free.get(connector, 0.0), now) + 1.0 / limit.per_second
            self.pool.submit(self._send, key, item)
        return wake

    def _send(self, key: tuple[str, str], item: Item) -> None:
        error: DeliveryError | None = None
        connector = self.connectors.get(item.connector)
        try:
            if connector is None:
                raise DeliveryError(f"the {item.connector!r} connector is not configured",
                                    permanent=True)
            item.sent_at = time.time()  # a busy pool may start it late: space from here
            connector.send(item.target, item.payload)
        except DeliveryError as exc:
            error = exc
        except Exception as exc:  # an SDK surprise: still never lose the item
            log.exception("notification %s to %s failed unexpectedly", item.id, item.connector)
            error = DeliveryError(f"{type(exc).__name__}: {exc}")
        self.results.put((key, item, error))

    def _finished(self, key: tuple[str, str], item: Item, error: DeliveryError | None) -> None:
        self.in_flight.discard(key)
        item.attempts += 1
        now = time.time()
        spacing = self.cfg.rate_limit(item.connector).per_target
        # Counted from the answer: the service counts arrivals, and the previous request may
        # have reached it late (a slow connect); this costs one round trip per interval.
        self.target_free[key] = max(self.target_free.get(key, 0.0), now + spacing)
        if error is None:
            self._delivered.append((item.id, item.attempts))  # written in one go by step()
            self.known.discard(item.id)
            return
        if error.permanent or item.attempts >= self.cfg.attempts:
            log.error("notification %s to %s:%s dead-lettered after %d attempts: %s", item.id,
                      item.connector, item.target, item.attempts, error)
            store.dead(self.engine, item.id, item.attempts, str(error))
            self.known.discard(item.id)
            return
        wait = error.retry_after if error.retry_after is not None else backoff(
            item.attempts, self.cfg.backoff_base, self.cfg.backoff_max)
        if error.retry_after is not None:  # the whole target (chat) is throttled, not one row
            self.target_free[key] = max(self.target_free.get(key, 0.0), now + wait)
        item.due = now + wait
        log.warning("notification %s to %s:%s failed (attempt %d): %s; retrying in %.1f s",
                    item.id, item.connector, item.target, item.attempts, error, wait)
        store.retry(self.engine, item.id, item.attempts, item.due, str(error))
        self.queues.setdefault(key, deque()).appendleft(item)  # keep the target's order

    # -- running ----------------------------------------------------------------------------

    def step(self, timeout: float = MAX_SLEEP) -> None:
        now = time.time()
        if self.poked.is_set() or now >= self._next_rescan:  # new rows come with a poke
            self.poked.clear()
            self._load(now)
        wake = self._start_due(now)
        try:
            result = self.results.get(timeout=max(0.0, min(timeout, wake - time.time())))
        except queue.Empty:
            return
        while True:
            if result is not None:
                self._finished(*result)
            try:
                result = self.results.get_nowait()
            except queue.Empty:
                break
        self._flush()

    def _flush(self) -> None:
        if self._delivered:
            store.delivered_many(self.engine, self._delivered)
            self._delivered = []

    def idle(self) -> bool:
        return not self.in_flight and not any(self.queues.values())

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.step()
        finally:
            self.close()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        while not self.results.empty():  # record what finished meanwhile
            result = self.results.get_nowait()
            if result is not None:
                self._finished(*result)
        self._flush()
