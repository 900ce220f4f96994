"""A run whose work happens in a background thread (SSH, Slurm batch, Fabric jobs).

It is a ``dispatcher.executors.Run``: ``fileno()`` is a pipe that becomes readable when the run
has ended, so the dispatcher's selector wakes up without polling. Slow work — connecting,
submitting, polling — runs in the thread, never in the dispatcher loop.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from chatops.report import Report

log = logging.getLogger("chatops.dispatcher")


class ThreadRun:
    idle_wait = False  # see dispatcher.executors.Run
    outputs = ()  # its output is copied by its thread, not read by the loop

    def __init__(self, job_id: int, label: str):
        self.job_id = job_id
        self.label = label
        self.exit_code: int | None = None
        self.error: str | None = None  # why the run failed outside the job itself
        self._read_fd, self._write_fd = os.pipe()
        self._done = threading.Event()
        self._closed = False
        self.handed_over = False

    def start_thread(self, target: Callable[[], None]) -> None:
        threading.Thread(target=self._guard, args=(target,), name=f"job-{self.job_id}",
                         daemon=True).start()

    def _guard(self, target: Callable[[], None]) -> None:
        try:
            target()
        except Exception as exc:  # one job's trouble must never leave the dispatcher waiting
            log.exception("job %s: %s", self.job_id, self.label)
            if self.error is None:
                self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.finish(self.exit_code if self.exit_code is not None else 255)

    def finish(self, exit_code: int) -> None:
        """Mark the run ended (once) and wake the dispatcher."""
        if self._done.is_set():
            return
        self.exit_code = exit_code
        self._done.set()
        os.write(self._write_fd, b"x")

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def fileno(self) -> int:
        return self._read_fd

    def wait(self) -> int:
        self._done.wait()
        return self.exit_code if self.exit_code is not None else 255

    def signal(self, sig: int) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._read_fd)
            os.close(self._write_fd)

    def status(self) -> str:
        return ""

    def wake(self) -> None:
        """Nothing to look at early (a Slurm batch run polls at once)."""

    def adjust_report(self, outcome: str, report: Report, stop_reason: str | None,
                      exit_code: int) -> tuple[str, Report]:
        """The dispatcher's report for this run, amended by what only the executor knows."""
        return outcome, report
