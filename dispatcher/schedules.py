"""Schedules, fired by the dispatcher: it owns the queue's clock already.

The loop asks ``next_due`` (when to wake) and calls ``step(now)``; nothing here polls. Each
dispatcher computes the same instants (chatops/triggers.py) and tries each fire; the database
lets one of them take it (chatops/schedule_store.py). At start, the fires missed while no
dispatcher ran come due at once: the latest of them runs once, late (its report says by how
much), or is skipped with a notice, as the schedule's ``misfire`` says. A paused schedule's
fires are passed over. A fire while its job type is suppressed queues the job, which waits for
the window's end; later fires join it, so it runs once.
"""

from __future__ import annotations

import logging
import math

from chatops import schedule_store as store
from chatops import wakeup
from chatops.job_config import Config
from chatops.queue import Queue
from chatops.report import Report, notice
from chatops.schedule_chat import GRACE_SECONDS, fire_note, span
from chatops.schedule_config import ScheduleSpec, report_target
from chatops.settings import Settings

log = logging.getLogger("chatops.schedules")

RETRY_SECONDS = 30.0  # after a database error, try a fire (or loading the schedules) again


class Scheduler:
    def __init__(self, settings: Settings, config: Config, queue: Queue, worker: str):
        self.settings = settings
        self.config = config
        self.queue = queue
        self.worker = worker
        self._specs: dict[str, ScheduleSpec] = {}
        self._since: dict[str, float] = {}  # every instant up to this one is accounted for
        self._due: dict[str, float] = {}
        self._load_at: float | None = None  # when to (re)load the schedules
        self._job_types: set[str] = set()
        self._pending: Config | None = None  # a new config, taken up by the next step

    def start(self, now: float) -> None:
        self.reconfigure(self.config, now)

    def reload(self, config: Config) -> None:
        """A new config, from another thread: the loop takes it up at its next step."""
        self._pending = config

    def reconfigure(self, config: Config, now: float) -> None:
        """A new job_configs.py: new schedules start, removed ones stop, changed ones restart."""
        self.config = config
        try:
            self._load(config, now)
            self._load_at = None
        except Exception:  # the database may be away for a moment; jobs go on meanwhile
            log.exception("could not load the schedules; trying again in %.0f s", RETRY_SECONDS)
            self._load_at = now + RETRY_SECONDS

    def _load(self, config: Config, now: float) -> None:
        specs = {spec.key: spec for spec in config.schedules()}
        states = store.sync_states(self.queue.engine, specs.values(), now) if specs else {}
        last = store.last_fires(self.queue.engine) if specs else {}
        for key, spec in specs.items():
            since = max(states[key].anchor_at, last[key].fire_at if key in last else -math.inf)
            old = self._specs.get(key)
            if old is not None and old.trigger.text == spec.trigger.text:
                since = max(since, self._since[key])
            self._since[key] = since
            self._due[key] = spec.trigger.next_after(since)
        for key in set(self._specs) - set(specs):
            self._since.pop(key, None)
            self._due.pop(key, None)
            log.info("schedule %s removed: it stops", key)
        self._specs = specs
        self._job_types = {spec.job_type for spec in specs.values()}

    @property
    def next_due(self) -> float | None:
        """When the loop must wake for the next fire (None: no schedules)."""
        times = list(self._due.values())
        if self._load_at is not None:
            times.append(self._load_at)
        return min(times, default=None)

    def step(self, now: float) -> None:
        if self._pending is not None:
            config, self._pending = self._pending, None
            self.reconfigure(config, now)
        elif self._load_at is not None and now >= self._load_at:
            self.reconfigure(self.config, now)
        for key, due in list(self._due.items()):
            if due > now:
                continue
            spec = self._specs[key]
            try:
                self._fire(spec, now)
            except Exception:
                log.exception("schedule %s: the fire failed; trying again in %.0f s", key,
                              RETRY_SECONDS)
                self._due[key] = now + RETRY_SECONDS

    def _latest(self, spec: ScheduleSpec, now: float) -> float | None:
        """The latest instant after the last one accounted for and not after ``now``."""
        since, window = self._since[spec.key], 60.0
        while True:  # look back from now, twice as far each time: a long outage costs little
            start = max(since, now - window)
            first = spec.trigger.next_after(start)
            if first <= now or start == since:
                break
            window *= 2
        if first > now:
            return None
        latest = first
        while (moment := spec.trigger.next_after(latest)) <= now:
            latest = moment
        return latest

    def _fire(self, spec: ScheduleSpec, now: float) -> None:
        key = spec.key
        fire_at = self._latest(spec, now)
        if fire_at is None:  # retried before its instant: wait for it
            self._due[key] = spec.trigger.next_after(self._since[key])
            return
        missed = spec.trigger.next_after(self._since[key]) < fire_at
        if store.paused(self.queue.engine, spec) is not None:
            log.info("schedule %s is paused: its run for %s is passed over", key,
                     spec.trigger.local(fire_at))
            self._done(spec, fire_at, now)
            return
        job = self.config.job(spec.job_type)
        assert job is not None  # validated with the config
        late = now - fire_at
        skip = late > GRACE_SECONDS and spec.misfire == "skip"
        platform, channel = report_target(spec.report_to,
                                          bool(self.settings.secret("SLACK_BOT_TOKEN")))
        fire = store.take_fire(self.queue.engine, spec, job, fire_at, platform=platform,
                               channel=channel, worker=self.worker, late_by=late,
                               held_until=self._held_until(spec.job_type, now), skip=skip,
                               now=now)
        self._done(spec, fire_at, now)
        if fire is None:
            log.info("schedule %s: the run for %s was taken by another dispatcher", key,
                     spec.trigger.local(fire_at))
            return
        if missed:
            log.warning("schedule %s: earlier runs before %s were missed while no dispatcher "
                        "ran; this one runs once", key, spec.trigger.local(fire_at))
        if fire.outcome == "skipped":
            text = (f"Schedule `{key}` did not run for {spec.trigger.local(fire_at)}: no "
                    f"dispatcher was running then, and it is {span(late)} late now (its misfire "
                    f"policy is skip). Next run: {spec.trigger.local(self._due[key])}.")
            self.queue.add_delivery(platform, notice(text), channel=channel, now=now)
            wakeup.notify(self.settings.run_dir, "outbox")
        log.info("schedule %s: run for %s %s%s", key, spec.trigger.local(fire_at), fire.outcome,
                 f" (job {fire.job_id})" if fire.job_id else "")

    def _done(self, spec: ScheduleSpec, fire_at: float, now: float) -> None:
        self._since[spec.key] = fire_at
        self._due[spec.key] = spec.trigger.next_after(max(fire_at, now))

    def _held_until(self, job_type: str, now: float) -> float | None:
        ends = [s.end_at for s in self.queue.suppressions(now)
                if s.job_type == job_type and s.start_at <= now < s.end_at]
        return max(ends, default=None)

    def annotate(self, job_id: int, report: Report) -> Report:
        """A scheduled job's report says which fire(s) it ran for, and how late or held."""
        if report.job_type not in self._job_types:
            return report
        fires = store.fires_of_job(self.queue.engine, job_id)
        if not fires:
            return report  # asked for in chat, not by a schedule
        key = f"{fires[0].namespace}/{fires[0].schedule}"
        note = fire_note(self._specs.get(key), key, fires)
        report.note = f"{report.note}\n{note}" if report.note else note
        return report
