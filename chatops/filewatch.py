"""Notice that one file was written: Linux inotify, through the standard library (ctypes).

The file's folder is watched, not the file, so both kinds of editor are seen: those that write
the file in place (``IN_CLOSE_WRITE``) and those that write a new file and rename it over the
old one (``IN_MOVED_TO``). The watch is a file descriptor: wait on it with ``select``.
"""

from __future__ import annotations

import ctypes
import os
import struct
from pathlib import Path

IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


class FileWatch:
    def __init__(self, path: Path):
        self.name = path.name.encode()
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        if libc.inotify_add_watch(self.fd, os.fsencode(path.parent),
                                  IN_CLOSE_WRITE | IN_MOVED_TO) < 0:
            error = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(error, f"cannot watch {path.parent}")

    def fileno(self) -> int:
        return self.fd

    def changed(self) -> bool:
        """Read the pending events: True if one was about the file."""
        seen = False
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                return seen
            offset = 0
            while offset < len(data):
                _, _, _, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size:offset + _EVENT.size + length].rstrip(b"\0")
                seen = seen or name == self.name
                offset += _EVENT.size + length

    def close(self) -> None:
        os.close(self.fd)
