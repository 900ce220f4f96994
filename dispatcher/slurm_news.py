"""Slurm news for the dispatcher: what Slurm says of jobs besides the dispatcher's own polls.

- MailProg events (dispatcher/notify_ingest.py): the spool is ingested into notifications;
  broken notification settings stop the dispatcher's start with their errors.
- The telemetry feed (dispatcher/telemetry_feed.py), when job_configs.py's ``telemetry`` has
  ``feeds``: the daemons' cluster and job topics read back.

Both wake the run of a chat-submitted batch job they have news of, so that it polls at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from chatops.job_config import Config
from chatops.notify.check import check_setup
from chatops.queue import Queue
from chatops.settings import Settings, SetupError
from dispatcher.notify_ingest import NotifyIngest

log = logging.getLogger("chatops.dispatcher")


class SlurmNews:
    def __init__(self, settings: Settings, config: Config, queue: Queue,
                 wake_runs: Callable[[set[int]], None]):
        self.settings = settings
        self.queue = queue
        self.wake_runs = wake_runs
        errors, warnings = check_setup(config.notifications, settings.environ)
        if errors:
            raise SetupError("the Slurm notification settings have errors:\n"
                             + "\n".join(errors) + "\nCheck them with: chatops config check")
        for warning in warnings:
            log.warning("%s", warning)
        self.ingest = NotifyIngest(settings, config, queue)
        self.ingest.on_chat_jobs = wake_runs
        self.config = config
        self.feed = None  # a telemetry_feed.Feed while job_configs.py has feeds

    def start(self, stopping: threading.Event) -> None:
        self.ingest.start(stopping)
        self._follow(self.config)

    def step(self, now: float) -> None:
        self.ingest.step(now)

    def reconfigure(self, config: Config) -> None:
        self.ingest.reconfigure(config)
        if (self.feed.spec if self.feed else None) != config.telemetry:
            self._follow(config)
        self.config = config

    def close(self) -> None:
        if self.feed is not None:
            self.feed.close()
        self.ingest.close()

    def _follow(self, config: Config) -> None:
        """Read the telemetry daemons' topics back when ``telemetry`` has feeds."""
        from dispatcher.telemetry_feed import Feed  # confluent-kafka: loaded when used

        if self.feed is not None:
            self.feed.close()
            self.feed = None
        if config.telemetry and config.telemetry.feeds:
            try:
                self.feed = Feed(config.telemetry, self.queue, self.wake_runs).start()
            except Exception:  # a broken broker setting must not stop the jobs
                log.exception("the telemetry feed is off: its setup failed")
