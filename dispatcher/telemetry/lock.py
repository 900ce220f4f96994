"""The daemon's lock: one daemon per lock directory (and per buffer directory).

An exclusive ``flock`` on a file in the directory, held for the daemon's life and released by
the kernel however the daemon ends; the file holds the holder's pid for the message the next
daemon prints.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "chatops-telemetry.lock"


class LockHeld(Exception):
    """Another daemon holds the lock; the message says which and what to do."""


class DirectoryLock:
    def __init__(self, directory: str | Path, what: str):
        self.path = Path(directory) / LOCK_NAME
        self.what = what  # "lock-directory" or "buffer-directory", for the message
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockHeld(f"another telemetry daemon (pid {holder}) holds {self.path}: stop "
                           f"it first, or give this one another {self.what}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None
