"""Start local jobs off the loop thread: a few threads fork and exec them, so that several
starts overlap and the loop keeps reading output and recording ends meanwhile.

The loop hands over a prepared ``Launch``; a starter thread runs ``LocalExecutor.spawn`` and
writes a byte to a pipe the loop's selector watches; the loop then takes the results.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Iterator
from queue import SimpleQueue

from dispatcher.local import Launch, LocalExecutor, LocalRun

MAX_STARTERS = 4  # never more than the concurrency: each would wait for a slot anyway


class Starters:
    def __init__(self, local: LocalExecutor, concurrency: int):
        self.local = local
        self._launches: SimpleQueue[Launch | None] = SimpleQueue()
        self._results: collections.deque = collections.deque()  # (job id, run or exception)
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._threads = [threading.Thread(target=self._work, name=f"start-{n}", daemon=True)
                         for n in range(min(MAX_STARTERS, concurrency))]
        for thread in self._threads:
            thread.start()

    def fileno(self) -> int:
        """Readable when a start has finished (for the loop's selector)."""
        return self._read

    def submit(self, launch: Launch) -> None:
        self._launches.put(launch)

    def results(self) -> Iterator[tuple[int, LocalRun | BaseException]]:
        """The starts finished since the last call: the run, or why it could not start."""
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass
        while self._results:
            yield self._results.popleft()

    def close(self) -> None:
        """Stop the threads once they have started what they were given."""
        for _ in self._threads:
            self._launches.put(None)
        for thread in self._threads:
            thread.join()
        os.close(self._read)
        os.close(self._write)

    def _work(self) -> None:
        while (launch := self._launches.get()) is not None:
            try:
                result: LocalRun | BaseException = self.local.spawn(launch)
            except BaseException as exc:  # the loop reports it as the job's failure to start
                result = exc
            self._results.append((launch.job_id, result))
            try:
                os.write(self._write, b"!")
            except BlockingIOError:
                pass  # the loop has plenty of wake-ups waiting already
