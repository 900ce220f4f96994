"""Notice that one file was written (Linux inotify, through inotify_simple).

The file's folder is watched, not the file, so both kinds of editor are seen: those that write
the file in place (``CLOSE_WRITE``) and those that write a new file and rename it over the old
one (``MOVED_TO``). The watch is a file descriptor: wait on it with ``select``.
"""

from __future__ import annotations

from pathlib import Path

from inotify_simple import INotify, flags


class FileWatch:
    def __init__(self, path: Path):
        self.name = path.name
        self._inotify = INotify(nonblocking=True)
        try:
            self._inotify.add_watch(path.parent, flags.CLOSE_WRITE | flags.MOVED_TO)
        except OSError:
            self._inotify.close()
            raise

    def fileno(self) -> int:
        return self._inotify.fileno()

    def changed(self) -> bool:
        """Read the pending events: True if one was about the file."""
        return any(event.name == self.name for event in self._inotify.read(timeout=0))

    def close(self) -> None:
        self._inotify.close()
