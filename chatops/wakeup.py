"""Wake a sleeping process at once when there is work for it, on one host.

A listener binds a Unix datagram socket ``<run dir>/<topic>.<pid>.sock``; ``notify(topic)``
sends one byte to every such socket. Sockets of dead processes are removed on the way. Several
hosts sharing PostgreSQL cannot reach each other this way and fall back to polling.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
import tempfile
from pathlib import Path

from chatops import privileges

_MAX_PATH = 90  # AF_UNIX paths are limited to 108 bytes; leave room for the file name
_counter = itertools.count()


def socket_dir(run_dir: Path) -> Path:
    """``run_dir``, or a short stand-in under /tmp when its path is too long for a socket
    (the same for every process and account that shares ``run_dir``)."""
    if len(str(run_dir)) <= _MAX_PATH:
        return run_dir
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"chatops-{digest}"


class Listener:
    def __init__(self, run_dir: Path, topic: str):
        folder = socket_dir(run_dir)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = folder / f"{topic}.{os.getpid()}.{next(_counter)}.sock"
        self.path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.setblocking(False)
        owner = privileges.owner_for(run_dir)  # a root dispatcher beside an unprivileged web
        if owner is not None:                   # server and bots: they must use this too
            for path in {run_dir, folder, self.path}:
                if path.exists() and path.stat().st_uid == 0:
                    os.chown(path, *owner)

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> bool:
        """Consume pending wake-ups; True if there were any."""
        woke = False
        while True:
            try:
                self.sock.recv(64)
                woke = True
            except (BlockingIOError, InterruptedError):
                return woke

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


def notify(run_dir: Path, topic: str) -> None:
    run_dir = socket_dir(run_dir)
    try:
        names = [n for n in os.listdir(run_dir)
                 if n.startswith(topic + ".") and n.endswith(".sock")]
    except FileNotFoundError:
        return
    if not names:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for name in names:
            path = os.path.join(run_dir, name)
            try:
                sock.sendto(b"!", path)
            except (ConnectionRefusedError, FileNotFoundError):
                try:  # nobody listens there any more
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            except (BlockingIOError, OSError):
                pass  # its buffer is full: it is awake anyway

