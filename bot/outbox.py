"""Deliver queued reports and notices for one platform, with retries that never block others.

A failed attempt is rescheduled (``Retry-After`` when the platform gave one, else exponential
backoff with jitter) instead of sleeping, so one slow channel does not hold up the rest. After
the last attempt the delivery is marked failed, the error is recorded on its job (the job itself
keeps its state), and a short "could not deliver" notice is tried once. A bot that dies
mid-send loses nothing: the claim is a lease, and the delivery comes due again after it.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from chatops import storage, wakeup
from chatops.platform import Delivery, DeliveryError, Platform
from chatops.queue import Queue
from chatops.report import notice
from chatops.settings import Settings

log = logging.getLogger("chatops.outbox")


def backoff(attempt: int) -> float:
    return min(60.0, 2.0 ** attempt) * random.uniform(0.5, 1.0)


class OutboxWorker:
    def __init__(self, settings: Settings, queue: Queue, platform: Platform):
        self.settings = settings
        self.queue = queue
        self.platform = platform
        self.outage = storage.Outage(f"chatops bot {platform.name}", (
            "nothing is sent", "nothing was sent"))

    def run(self, stop: threading.Event) -> None:
        listener = wakeup.Listener(self.settings.run_dir, "outbox")
        try:
            while not stop.is_set():
                timeout = self.settings.poll_interval
                try:
                    if self.deliver_due():
                        continue
                    due = self.queue.next_delivery_due(self.platform.name)
                except Exception as exc:  # a full disk: wait for room, never die of it
                    if not self.outage.failed(exc):
                        raise
                    due = None
                else:
                    self.outage.recovered()
                    self.outage.held.clear()  # (the dispatcher tells the admins)
                if due is not None:
                    timeout = max(0.0, min(timeout, due - time.time()))
                _wait(listener, stop, timeout)
        finally:
            listener.close()

    def deliver_due(self) -> bool:
        """Deliver one due item; False when there was none."""
        row = self.queue.claim_delivery(self.platform.name)
        if row is None:
            return False
        delivery = Delivery.from_row(
            row, lambda progress: self.queue.save_delivery_progress(row.id, progress))
        if delivery.progress:
            log.info("delivery %s to %s resumes after %d step(s) already sent", row.id,
                     self.platform.name, len(delivery.progress))
        try:
            self.platform.deliver(delivery)
        except DeliveryError as exc:
            self._failed(delivery, str(exc), exc.retry_after, exc.permanent)
        except Exception as exc:  # a bug or an SDK surprise: still never lose the item
            log.exception("delivery %s to %s failed", delivery.id, self.platform.name)
            self._failed(delivery, f"{type(exc).__name__}: {exc}", None, False)
        else:
            self.queue.delivered(delivery.id)
        return True

    def _failed(self, delivery: Delivery, error: str, retry_after: float | None,
                permanent: bool) -> None:
        if not permanent and delivery.attempts < self.settings.delivery_attempts:
            wait = retry_after if retry_after is not None else backoff(delivery.attempts)
            log.warning("delivery %s to %s failed (attempt %d): %s; retrying in %.1f s",
                        delivery.id, self.platform.name, delivery.attempts, error, wait)
            self.queue.retry_delivery(delivery.id, time.time() + wait, error)
            return
        log.error("delivery %s to %s failed for good: %s", delivery.id, self.platform.name, error)
        self.queue.fail_delivery(delivery.id, error)
        if delivery.payload.get("kind") == "report":
            self._fallback(delivery, error)

    def _fallback(self, delivery: Delivery, error: str) -> None:
        text = (f"Could not deliver the report of job {delivery.job_id}: {error[:200]}. "
                f"`logs {delivery.job_id}` shows its output.")
        fallback = Delivery(id=delivery.id, platform=delivery.platform, channel=delivery.channel,
                            thread=delivery.thread, message=None, is_direct=delivery.is_direct,
                            payload=notice(text), attempts=1, job_id=delivery.job_id)
        try:
            self.platform.deliver(fallback)
        except Exception as exc:  # nothing more we can do; it is recorded on the job
            log.error("the could-not-deliver notice for job %s failed too: %s",
                      delivery.job_id, exc)


def _wait(listener: wakeup.Listener, stop: threading.Event, timeout: float) -> None:
    import select

    select.select([listener], [], [], timeout)
    listener.drain()
