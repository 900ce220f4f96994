"""The dispatcher's own retention of calculations' result files: with ``calculations =
{"keep_results": "30d"}`` it removes the files of calculations that ended longer ago than that
(never while a download link to them works: chatops/prune.py), at start and then every tenth of
that age (at most hourly), so a site needs no cron job for them. Each removal is recorded, and
``calc <id>`` says when the files went. ``chatops prune`` still removes them with the logs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from chatops.job_config import Config
from chatops.prune import prune_results
from chatops.queue import Queue
from chatops.settings import Settings

log = logging.getLogger("chatops.dispatcher")

IDLE_LOOK = 60.0  # seconds between looks at the config while keep_results is unset
MAX_PAUSE = 3600.0


class ResultsRetention:
    def __init__(self, settings: Settings, config: Callable[[], Config], queue: Queue):
        self.settings = settings
        self.config = config  # the current one (live config may change keep_results)
        self.queue = queue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="calc-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # (started)
            self._thread.join(10)

    def _run(self) -> None:
        while True:
            keep = self.config().calc.keep_results
            if keep:
                try:
                    removed = prune_results(self.settings, self.queue, keep)
                    if removed:
                        log.info("removed the result files of %d calculations that ended over "
                                 "%g s ago (calculations' keep_results)", removed, keep)
                except Exception:  # a database or disk fault: try again at the next look
                    log.exception("could not remove old calculations' result files")
                finally:
                    self.queue.release_connection()
            if self._stop.wait(min(MAX_PAUSE, max(1.0, keep / 10)) if keep else IDLE_LOOK):
                return
