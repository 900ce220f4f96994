"""The sender thread: drains the buffer into the sink, in order.

When messages arrive while it is idle it waits a random time within the sending window
(Sonar's jitter, so a thousand nodes sampling at the same instant do not all send at once), then
sends everything waiting, in batches. A batch the sink does not fully take stays in the buffer
and is retried after a backoff that doubles up to a minute. :meth:`Sender.stop` sends what is
waiting at once (no jitter) for up to its grace time, then leaves the rest on disk for the next
start.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Protocol

from dispatcher.telemetry.buffer import DiskBuffer, Message

log = logging.getLogger(__name__)

BATCH_COUNT = 200
BATCH_BYTES = 4 * 1024 * 1024
MAX_BACKOFF = 60.0


class Refused(Exception):
    """A sink's answer for a message it can never take: the ``delivered`` before it went, the
    one at that index is refused for ``reason``."""

    def __init__(self, delivered: int, reason: str):
        super().__init__(reason)
        self.delivered = delivered
        self.reason = reason


class Sink(Protocol):
    name: str

    def send(self, batch: list[Message], abort: threading.Event) -> tuple[int, str | None]: ...

    def close(self) -> None: ...


class Sender(threading.Thread):
    def __init__(self, buffer: DiskBuffer, sink: Sink, window_seconds: float):
        super().__init__(name="telemetry-sender", daemon=True)
        self.buffer = buffer
        self.sink = sink
        self.window = window_seconds
        self.flushing = threading.Event()  # send now, no jitter
        self.abort = threading.Event()  # give up on the batch in hand
        self.finished = threading.Event()
        self.delivered = 0

    def run(self) -> None:
        backoff = 0.0
        try:
            while not self.abort.is_set():
                if not self.buffer.wait(timeout=0.5):
                    if self.flushing.is_set():
                        return  # nothing left to send
                    continue
                if not self.flushing.is_set():
                    self.flushing.wait(random.uniform(0, self.window))  # jitter
                if self._drain():
                    backoff = 0.0
                    continue
                backoff = min(MAX_BACKOFF, max(1.0, backoff * 2))
                self.abort.wait(0.5 if self.flushing.is_set() else backoff)
        finally:
            self.sink.close()
            self.finished.set()

    def _drain(self) -> bool:
        """Send batches until the buffer is empty (True) or the sink stops short (False)."""
        while not self.abort.is_set():
            batch = self.buffer.take(BATCH_COUNT, BATCH_BYTES)
            if not batch:
                return True
            try:
                delivered, reason = self.sink.send(batch, self.abort)
            except Refused as refused:
                self.buffer.done(batch[:refused.delivered])
                self.buffer.reject(batch[refused.delivered], refused.reason)
                self.buffer.release(batch[refused.delivered + 1:])
                self.delivered += refused.delivered
                continue
            except Exception as exc:  # a sink's bug must neither lose data nor end the thread
                log.exception("the %s sink failed", self.sink.name)
                delivered, reason = 0, str(exc)
            self.buffer.done(batch[:delivered])
            self.buffer.release(batch[delivered:])
            self.delivered += delivered
            if delivered < len(batch):
                log.warning("%s: %d message(s) wait on disk: %s", self.sink.name,
                            len(batch) - delivered, reason)
                return False
        return False

    def stop(self, grace: float) -> int:
        """Send what is waiting for up to ``grace`` seconds; the number left on disk."""
        self.flushing.set()
        self.buffer.wake()
        deadline = time.monotonic() + grace
        while not self.finished.wait(0.1):
            if time.monotonic() >= deadline:
                self.abort.set()
        self.join(5)
        left = len(self.buffer)
        if left:
            log.warning("%d message(s) stay on disk in %s for the next start", left,
                        self.buffer.directory)
        return left
