"""The on-disk buffer: every message waits here, one file each, until a sink has it.

Nothing is lost while the broker is down or the daemon restarts: messages are written before
they are sent and deleted once delivered, and a daemon that starts finds the ones its
predecessor left and sends them first, in order. The buffer is bounded in bytes: when a new
message does not fit, the oldest messages not yet handed to the sink are dropped and counted
(``evicted``), and the daemon reports the count in the ``meta.attrs`` of what it sends next.
Files are written to a temporary name and renamed, so a crash never leaves half a message;
they are private to the daemon's user (they may hold the API token).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".msg"


@dataclass(frozen=True)
class Message:
    seq: int
    topic: str
    key: str
    kind: str  # the data type ("sample", ...), for sinks that file by type
    value: bytes


class DiskBuffer:
    def __init__(self, directory: str | Path, limit: int):
        self.directory = Path(directory)
        self.limit = limit
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.evicted = 0  # messages dropped since this daemon started
        self.rejected = 0  # messages the sink refused for good, kept in rejected/
        self._cond = threading.Condition()
        self._sizes: OrderedDict[int, int] = OrderedDict()  # seq -> bytes, oldest first
        self._taken: set[int] = set()  # handed to the sink, not yet delivered
        self.total = 0
        for leftover in self.directory.glob("*.tmp"):
            leftover.unlink(missing_ok=True)
        for path in sorted(self.directory.glob("*" + SUFFIX)):
            if path.stem.isdigit():
                size = path.stat().st_size
                self._sizes[int(path.stem)] = size
                self.total += size
        self._next = max(self._sizes, default=0) + 1
        if self._sizes:
            log.info("%d message(s) (%d bytes) left by an earlier run will be sent first",
                     len(self._sizes), self.total)

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:016d}{SUFFIX}"

    def __len__(self) -> int:
        with self._cond:
            return len(self._sizes)

    def put(self, topic: str, key: str, kind: str, value: bytes) -> None:
        """Keep a message; one that cannot be written (disk full) is counted as dropped."""
        header = json.dumps({"topic": topic, "key": key, "kind": kind}).encode() + b"\n"
        with self._cond:
            seq, self._next = self._next, self._next + 1
            path = self._path(seq)
            tmp = path.with_suffix(".tmp")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(header)
                    f.write(value)
                os.replace(tmp, path)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                self.evicted += 1
                log.error("a %s message is lost: cannot write it to %s: %s", kind,
                          self.directory, exc.strerror)
                return
            size = len(header) + len(value)
            self._sizes[seq] = size
            self.total += size
            self._evict(keep=seq)
            self._cond.notify_all()

    def _evict(self, keep: int) -> None:
        dropped = 0
        for seq in list(self._sizes):
            if self.total <= self.limit:
                break
            if seq in self._taken or seq == keep:
                continue
            self._delete(seq)
            dropped += 1
        if dropped:
            self.evicted += dropped
            log.warning("buffer full (%d bytes): dropped the %d oldest message(s), %d since "
                        "start", self.limit, dropped, self.evicted)

    def _delete(self, seq: int) -> None:
        self.total -= self._sizes.pop(seq)
        self._path(seq).unlink(missing_ok=True)

    def wait(self, timeout: float) -> bool:
        """Wait until a message is waiting that is not with the sink; True if one is."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._sizes) > len(self._taken), timeout)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def take(self, max_count: int, max_bytes: int) -> list[Message]:
        """The oldest waiting messages (at least one if any), now with the sink."""
        batch: list[Message] = []
        with self._cond:
            size = 0
            for seq, length in self._sizes.items():
                if seq in self._taken:
                    continue
                if batch and (len(batch) >= max_count or size + length > max_bytes):
                    break
                try:
                    raw = self._path(seq).read_bytes()
                except OSError as exc:
                    log.error("buffered message %s is unreadable, dropped: %s", seq, exc)
                    self._delete(seq)
                    continue
                header, _, value = raw.partition(b"\n")
                meta = json.loads(header)
                batch.append(Message(seq, meta["topic"], meta["key"], meta["kind"], value))
                self._taken.add(seq)
                size += length
        return batch

    def done(self, messages: list[Message]) -> None:
        """Delivered: delete them."""
        with self._cond:
            for m in messages:
                self._taken.discard(m.seq)
                if m.seq in self._sizes:
                    self._delete(m.seq)

    def reject(self, message: Message, reason: str) -> None:
        """The sink can never take ``message`` (larger than the broker accepts, say): move it to
        ``rejected/`` so it stops blocking the messages behind it, and count it."""
        with self._cond:
            self._taken.discard(message.seq)
            if message.seq not in self._sizes:
                return
            folder = self.directory / "rejected"
            folder.mkdir(exist_ok=True, mode=0o700)
            self._path(message.seq).replace(folder / self._path(message.seq).name)
            self.total -= self._sizes.pop(message.seq)
            self.rejected += 1
            log.error("a %s message of %d bytes for %s is refused for good (%s): kept in %s, "
                      "the messages behind it go on", message.kind, len(message.value),
                      message.topic, reason, folder)
            self._cond.notify_all()

    def release(self, messages: list[Message]) -> None:
        """Not delivered: they wait again, in their place."""
        with self._cond:
            for m in messages:
                self._taken.discard(m.seq)
            self._evict(keep=-1)
            self._cond.notify_all()
