"""Wake a sleeping process at once when there is work for it, on one host.

A listener binds a Unix datagram socket ``<run dir>/<topic>.<pid>.sock``; ``notify(topic)``
sends one byte to every such socket. Sockets of dead processes are removed on the way. Several
hosts sharing PostgreSQL cannot reach each other this way and fall back to polling.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


class Listener:
    def __init__(self, run_dir: Path, topic: str):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / f"{topic}.{os.getpid()}.{id(self)}.sock"
        self.path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.setblocking(False)

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
