"""A job's output on disk, and reading it back for reports, `logs`, the dashboard and pruning.

This module is the one place that knows the layout: ``job_logs(logs_dir, job).path("stdout")``
is where a job's stdout is, whether the job is running (its row has no ``log_dir`` yet) or
ended. A job type has one folder, ``<logs>/<namespace>/<job type>/``, made once, and a job's
files in it are named by its id: ``<id>.stdout`` and ``<id>.stderr`` (made only when the job
printed to that stream), and what a remote run records (``<id>.remote``, ``<id>.slurm.json``);
a job's row keeps the folder in ``log_dir``. Jobs that ran before migration 0009 have a folder
of their own, ``<logs>/<namespace>/<job type>/<id>/`` with ``stdout`` and ``stderr`` in it, and
that folder in ``log_dir``; both layouts are read alike.

``chatops prune`` removes the logs of old jobs and records, in the logs folder, that jobs
ended before a moment have none any more, so that their pages and `logs` say so.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatops.texts import clock

READ_LIMIT = 1024 * 1024  # what a report carries of stdout; the rest stays in the log
STDERR_TAIL_LINES = 20
STDERR_TAIL_CHARS = 1500
PRUNED_FILE = "pruned.json"  # in the logs folder: {"ended_before": ts, "pruned_at": ts}


@dataclass(frozen=True)
class JobLogs:
    folder: Path  # its type's folder; or, before migration 0009, its own (named by its id)
    job_id: int

    @property
    def own_folder(self) -> bool:
        """Whether the folder is the job's alone (else its files are ``<id>.*`` in it). A job
        type's folder is never named like a job id: its name is ``<namespace>_<job>``."""
        return self.folder.name == str(self.job_id)

    def path(self, name: str) -> Path:
        """The file of one stream (``stdout``, ``stderr``) or record (``remote``, ...)."""
        return self.folder / name if self.own_folder else self.folder / f"{self.job_id}.{name}"

    def files(self) -> list[Path]:
        try:
            if self.own_folder:
                return [p for p in self.folder.iterdir() if p.is_file()]
            return list(self.folder.glob(f"{self.job_id}.*"))
        except OSError:
            return []

    def size(self) -> int:
        total = 0
        for path in self.files():
            try:
                total += path.stat().st_size
            except OSError:
                pass
        return total

    def remove(self) -> bool:
        """Delete the job's files (and its own folder); True if there were any."""
        files = self.files()
        for path in files:
            path.unlink(missing_ok=True)
        if self.own_folder and self.folder.is_dir():
            shutil.rmtree(self.folder, ignore_errors=True)
            return True
        return bool(files)


def type_folder(logs_dir: Path, namespace: str, job_type: str) -> Path:
    return logs_dir / namespace / job_type


def job_logs(logs_dir: Path, job: Any) -> JobLogs:
    """The logs of a job row: where its row says, or where a running job writes them."""
    folder = job.log_dir or type_folder(logs_dir, job.namespace, job.job_type)
    return JobLogs(Path(folder), job.id)


def pruned(logs_dir: Path, job: Any) -> str | None:
    """How the job's logs were pruned (to follow "the logs were removed"), or None."""
    record = read_pruned(logs_dir)
    if not record or not job.finished_at or job.finished_at >= record["ended_before"]:
        return None
    return (f"by `chatops prune` on {clock(record['pruned_at'], date=True)}, with those of "
            f"every job that ended before {clock(record['ended_before'], date=True)}")


def read_pruned(logs_dir: Path) -> dict[str, float] | None:
    try:
        record = json.loads((logs_dir / PRUNED_FILE).read_text())
        return {"ended_before": float(record["ended_before"]),
                "pruned_at": float(record["pruned_at"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_pruned(logs_dir: Path, ended_before: float, now: float | None = None) -> None:
    """Remember that the logs of jobs ended before ``ended_before`` are gone (the latest
    moment wins: a later prune with a longer retention removed nothing newer)."""
    now = time.time() if now is None else now
    previous = read_pruned(logs_dir)
    if previous and previous["ended_before"] > ended_before:
        ended_before = previous["ended_before"]
    logs_dir.mkdir(parents=True, exist_ok=True)
    temporary = logs_dir / f".{PRUNED_FILE}.{os.getpid()}"
    temporary.write_text(json.dumps({"ended_before": ended_before, "pruned_at": now}) + "\n")
    temporary.replace(logs_dir / PRUNED_FILE)


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
