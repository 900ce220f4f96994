"""A job's output on disk: where it is, and reading it back for reports and `logs`.

A job type has one folder, ``<logs>/<namespace>/<job type>/``, made once, and a job's files in it
are named by its id: ``<id>.stdout`` and ``<id>.stderr`` (made only when the job printed to that
stream), and what a remote run records (``<id>.remote``, ``<id>.slurm.json``). A job's row keeps
the folder in ``log_dir``. Jobs that ran before migration 0008 have a folder of their own,
``<logs>/<namespace>/<job type>/<id>/`` with ``stdout`` and ``stderr`` in it, and that folder in
``log_dir``; both layouts are read alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

READ_LIMIT = 1024 * 1024  # what a report carries of stdout; the rest stays in the log
STDERR_TAIL_LINES = 20
STDERR_TAIL_CHARS = 1500


@dataclass(frozen=True)
class JobLogs:
    folder: Path
    job_id: int

    @property
    def own_folder(self) -> bool:
        """Whether this is a job from before 0008, with a folder of its own. (A job type's
        folder is never named like a job id: its name is ``<namespace>_<job>``.)"""
        return self.folder.name == str(self.job_id)

    def path(self, name: str) -> Path:
        """The file of one stream (``stdout``, ``stderr``) or record (``remote``, ...)."""
        if self.own_folder:
            return self.folder / name
        return self.folder / f"{self.job_id}.{name}"


def type_folder(logs_dir: Path, namespace: str, job_type: str) -> Path:
    return logs_dir / namespace / job_type


def job_logs(logs_dir: Path, job: Any) -> JobLogs:
    """The logs of a job row: where its row says, or where a running job writes them."""
    folder = job.log_dir or type_folder(logs_dir, job.namespace, job.job_type)
    return JobLogs(Path(folder), job.id)


def read_capped(path: Path, limit: int = READ_LIMIT) -> tuple[str, bool]:
    """The start of a log file, and whether it was cut."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return "", False
    return data[:limit].decode("utf-8", "replace"), len(data) > limit


def tail(path: Path, lines: int = STDERR_TAIL_LINES, chars: int = STDERR_TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - chars * 4))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    text = "\n".join(data.rstrip("\n").splitlines()[-lines:])
    return text[-chars:]
