"""Spooled MailProg events become queued notifications (the dispatcher's notification part).

The dispatcher loop calls ``step`` on each wake-up: a cheap look at the spool directory (its
cadence is the loop's own). Files found are handled on this component's thread, so waiting for
sacct never delays the loop. Per file: parse, drop a repeated event id, resolve and authorise the
targets, gather statistics (finished jobs), render per connector, insert the rows (over the
per-user cap: suppressed, counted later), remove the file. A file that is not an event is moved
to ``<spool>/corrupt/`` and logged, never retried. A job submitted from chat also gets the event
as a notice in its requesters' threads (looked up by cluster + Slurm job id), and the
dispatcher looks at once at the job it tracks instead of at its next poll.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from chatops import wakeup
from chatops.db import reading, slurm_submissions, storable_int
from chatops.job_config import Config
from chatops.job_end import tell_thread
from chatops.notify import store
from chatops.notify.config import NotifyConfig, configured_connectors, load_notify_config
from chatops.notify.render import context, render, slurm_message
from chatops.notify.stats import gather
from chatops.notify.targets import resolve
from chatops.queue import Queue
from chatops.report import notice
from chatops.settings import Settings
from chatops.slurm.client import Runner, SlurmClient, local_runner
from chatops.slurm.events import SlurmEvent, parse_event
from chatops.texts import plural

log = logging.getLogger("chatops.notify")

BATCH = 200  # spool files per transaction

SUMMARY = "{count} further notification{s} about your Slurm jobs {were} suppressed (more than " \
          "{cap} within {window})."


def _commit_one(engine: Any, group: tuple[dict[str, Any], list[dict[str, Any]]],
                now: float) -> bool:
    try:
        store.commit(engine, [group], now)
        return True
    except IntegrityError:
        log.info("event %s already handled: dropped", group[0]["event_id"])
        return False


def _is_event(data: Any) -> bool:
    return isinstance(data, dict) and ("argv" in data or "env" in data or "subject" in data)


class NotifyIngest:
    def __init__(self, settings: Settings, config: Config, queue: Queue, *,
                 runner: Runner | None = local_runner, cfg: NotifyConfig | None = None):
        self.settings = settings
        self.config = config
        self.queue = queue
        self.engine = queue.engine
        self.cfg = cfg or load_notify_config(config.notifications, settings.environ)
        self.spool = Path(settings.spool_dir)
        self.site_dir = settings.environ.get("CHATOPS_TEMPLATES_DIR") or None
        # Receivers on a platform without credentials are refused at once, not queued.
        self.available = configured_connectors(settings.environ, self.cfg)
        self.client = SlurmClient(runner, timeout=self.cfg.sacct_timeout) if runner else None
        self._pool: Any = None  # dispatcher/ssh.py's pool, for clusters in the config
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next_scan = 0.0
        self._stop: threading.Event | None = None
        # called with the chat job ids an event is about (the dispatcher polls them at once)
        self.on_chat_jobs: Callable[[set[int]], None] | None = None

    # -- running inside the dispatcher ------------------------------------------------------

    def start(self, stop: threading.Event) -> None:
        self._stop = stop
        thread = threading.Thread(target=self._ingest_loop, name="notify-ingest", daemon=True)
        thread.start()
        self._threads.append(thread)

    def step(self, now: float) -> None:
        """Called by the dispatcher loop: wake the ingest thread when the spool has files."""
        if now < self._next_scan:
            return
        self._next_scan = now + self.settings.poll_interval
        try:
            with os.scandir(self.spool) as entries:
                if any(e.name[:1].isdigit() and e.name.endswith(".json") for e in entries):
                    self._wake.set()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("cannot read the spool %s: %s", self.spool, exc)

    def _ingest_loop(self) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            self._wake.wait(max(self.cfg.user_window / 4, 1.0))
            self._wake.clear()
            try:
                self.scan()
            except Exception:  # the database may be down for a moment: try again later
                log.exception("notification ingest failed; the spool is kept")

    def reconfigure(self, config: Config) -> None:
        """A new job_configs.py: its clusters apply to the next event (the ``notifications``
        settings are read at start)."""
        self.config = config
        if self._pool is not None:
            self._pool.reconfigure(config.clusters)

    def close(self) -> None:
        self._wake.set()
        for thread in self._threads:
            thread.join(10)
        if self._pool is not None:
            self._pool.close()

    # -- the work ---------------------------------------------------------------------------

    def scan(self) -> int:
        """Ingest every spooled event; emit due suppression summaries. Returns rows queued."""
        paths = sorted(self.spool.glob("[0-9]*.json"))
        queued = 0
        for start in range(0, len(paths), BATCH):
            queued += self._ingest_paths(paths[start:start + BATCH])
        return queued + self.summarise()

    def _ingest_paths(self, paths: list[Path]) -> int:
        events: list[tuple[Path, SlurmEvent]] = []
        for path in paths:
            try:
                data = json.loads(path.read_bytes())
                if not _is_event(data):
                    raise ValueError("not a MailProg event")
                event = parse_event(data if data.get("id") else {**data, "id": path.stem})
            except FileNotFoundError:  # another dispatcher took it
                continue
            except (ValueError, UnicodeDecodeError, TypeError, RecursionError) as exc:
                self._corrupt(path, exc)
                continue
            events.append((path, event))
        queued = self._ingest_events([event for _, event in events])
        for path, _ in events:  # only once their rows are committed
            path.unlink(missing_ok=True)
        return queued

    def _corrupt(self, path: Path, exc: Exception) -> None:
        aside = self.spool / "corrupt"
        aside.mkdir(mode=0o2770, exist_ok=True)
        os.replace(path, aside / path.name)
        log.error("spool file %s is not a valid event (%s): moved to %s", path.name, exc, aside)

    def ingest(self, event: SlurmEvent) -> int:
        return self._ingest_events([event])

    def _ingest_events(self, events: list[SlurmEvent]) -> int:
        """Queue the rows of several events in one transaction (with their event ids)."""
        now = time.time()
        seen = store.seen(self.engine, [e.event_id for e in events if e.event_id])
        opted: dict = {}  # opt-in answers, shared by the batch
        used: dict[str, int] = {}  # per-user counts against the cap
        groups: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        for event in events:
            event_id = event.event_id or f"{time.time_ns()}"
            if event_id in seen:
                log.info("event %s (job %s) already handled: dropped", event_id,
                         event.display_id)
                continue
            seen.add(event_id)
            meta = {"event_id": event_id, "cluster": event.cluster, "cluster_user": event.user,
                    "slurm_job_id": event.display_id or None, "mail_type": event.mail_type}
            groups.append((meta, self._rows(event, event_id, opted, used, now)))
        try:
            store.commit(self.engine, groups, now)
        except IntegrityError:  # another ingest recorded one of them meanwhile: one by one
            groups = [g for g in groups if _commit_one(self.engine, g, now)]
        queued = sum(len(rows) for _, rows in groups)
        if queued:
            wakeup.notify(self.settings.run_dir, "outbox")  # the platforms' senders
        return queued

    def _rows(self, event: SlurmEvent, event_id: str, opted: dict, used: dict[str, int],
              now: float) -> list[dict[str, Any]]:
        targets = resolve(self.engine, self.cfg, event, self.available, opted)
        subscribers = self._chat_subscribers(event)
        if subscribers and self.on_chat_jobs is not None:
            self.on_chat_jobs({job_id for job_id, _ in subscribers})
        what = f"event {event_id} (job {event.display_id} {event.mail_type})"
        if not targets and not subscribers:
            log.info("%s: nobody to notify", what)
            return []
        stats: dict[str, Any] = {"stats": None, "hints": []}
        try:
            stats = gather(event, self._client_for(event), self.cfg)
        except Exception:  # statistics never suppress the notification
            log.exception("statistics for job %s failed", event.display_id)
        ctx = context(event, stats)
        told = self._tell_threads(subscribers, ctx, event.finished)
        user = event.user or event.mail_user or ""
        if user not in used:
            used[user] = store.recent_count(self.engine, user, now - self.cfg.user_window)
        rows = []
        message = slurm_message(ctx)  # each platform renders it when it sends
        for target in targets:
            state = "pending" if used[user] < self.cfg.user_cap else "suppressed"
            used[user] += state == "pending"
            rows.append({"event_id": event_id, "connector": target.connector,
                         "target": target.target, "cluster_user": user, "state": state,
                         "payload": message})
        log.info("%s: %s", what, _outcome(len(rows), told, len(subscribers) - len(told)))
        return rows

    def _client_for(self, event: SlurmEvent) -> SlurmClient | None:
        """sacct over the cluster's SSH connection when the config names the event's cluster
        (its Slurm ClusterName), else here."""
        if not event.cluster or event.cluster not in self.config.clusters:
            return self.client
        if self._pool is None:
            from dispatcher.ssh import SSHPool

            self._pool = SSHPool(self.config.clusters, self.settings.environ)
        return SlurmClient(self._pool.connection(event.cluster).run,
                           timeout=self.cfg.sacct_timeout)

    def summarise(self) -> int:
        rows = []
        for group in store.summaries_due(self.engine, self.cfg.user_window):
            count = group["count"]
            text = SUMMARY.format(count=count, s="" if count == 1 else "s",
                                  were="was" if count == 1 else "were", cap=self.cfg.user_cap,
                                  window=_span(self.cfg.user_window))
            rows.append({"connector": group["connector"], "target": group["target"],
                         "cluster_user": None, "state": "pending",  # the summary is not capped
                         "payload": notice(text)})
        store.add(self.engine, rows)
        if rows:
            wakeup.notify(self.settings.run_dir, "outbox")
        return len(rows)

    # -- chat-submitted jobs ----------------------------------------------------------------

    def _chat_subscribers(self, event: SlurmEvent) -> list[Any]:
        slurm_id = event.array_job_id or event.job_id
        if slurm_id is None or not storable_int(slurm_id):  # not a job we submitted
            return []
        with reading(self.engine) as conn:
            rows = list(conn.execute(select(slurm_submissions).where(
                slurm_submissions.c.slurm_job_id == slurm_id)))
        # The config's cluster name is usually Slurm's ClusterName; with one match, trust it.
        matching = ([r for r in rows if r.cluster == event.cluster]
                    or (rows if len(rows) == 1 else []))
        return [(row.job_id, sub) for row in matching
                for sub in self.queue.subscribers_of(row.job_id)]

    def _tell_threads(self, subscribers: list[Any], ctx: dict[str, Any], is_end: bool
                      ) -> list[Any]:
        """The event as a notice in each requester's thread; its end and the job's report
        become one message there (``chatops/job_end.py``). The subscribers told."""
        if not subscribers:
            return []
        text = render("mailto", "", ctx, self.site_dir)["text"]
        told = [(job_id, sub) for job_id, sub in subscribers
                if tell_thread(self.queue, job_id, sub, text, is_end)]
        if told:
            wakeup.notify(self.settings.run_dir, "outbox")
        return told


def _outcome(queued: int, subscribers: list[Any], dropped: int = 0) -> str:
    """What became of an event, for the log: ``2 notifications queued``, ``told the requester
    of job 12 in its thread (no other receivers)``, or both; ``dropped``: threads that had
    heard of the job's end already."""
    if not subscribers:
        if dropped and not queued:
            return (f"not told in {plural(dropped, 'thread')} (its job's end was told there "
                    "already)")
        return f"{plural(queued, 'notification')} queued"
    jobs = ", ".join(str(job_id) for job_id in sorted({job_id for job_id, _ in subscribers}))
    told = (f"told the requester of job {jobs} in its thread" if len(subscribers) == 1 else
            f"told the {len(subscribers)} requesters of job {jobs} in their threads")
    if not queued:
        return f"{told} (no other receivers)"
    return f"{plural(queued, 'notification')} queued, and {told}"


def _span(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
