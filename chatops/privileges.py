"""Who jobs run as: the job account (``CHATOPS_JOB_USER``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class JobAccount:
    """The unprivileged account local jobs run as."""

    name: str
    uid: int
    gid: int
    home: str

    def give(self, path: Path) -> None:
        """Make a folder the dispatcher created the job account's (its writeable folders)."""
        os.chown(path, self.uid, self.gid)
