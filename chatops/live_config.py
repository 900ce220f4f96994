"""Live config: every process follows edits to job_configs.py without a restart.

A process notices a change (an inotify watch on the file, ``SIGHUP``, or ``chatops config
reload``), validates the new file completely, and swaps it in whole: the callbacks the process
registered (its command handler, its dispatcher) get the new ``Config`` and use it for the next
command, job or fire; running jobs keep the spec they started with. A file with errors changes
nothing: the errors (as ``chatops config check`` prints them) go to the log, and once per edit,
whichever process sees it first, to the admins. Secrets are read only at start: an edit naming an
environment variable this process does not have is applied, with a warning that the variable
needs a restart. The admin channel (``admin_channel``) gets what the admins are told. Each
process records the version it runs (hash, time) in ``processes``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import selectors
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from chatops import alarms, redact, storage, wakeup
from chatops.config_loader import ConfigError, load_config
from chatops.db import config_rejections, insert_new, processes, reading
from chatops.filewatch import FileWatch
from chatops.job_config import Config
from chatops.queue import Queue
from chatops.service import Service
from chatops.settings import Settings

log = logging.getLogger("chatops.config")

HEARTBEAT_SECONDS = 30.0  # how often a process says it is alive (and which config it runs)
SETTLE_SECONDS = 0.2  # an editor's burst of writes ends before the file is read
TOPIC = "config"  # `chatops config reload` wakes every process on this host through it

Apply = Callable[[Config], None]


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def error_lines(path: Path, errors: Sequence[str]) -> list[str]:
    """A config's errors, as ``chatops config check`` prints them."""
    return [f"{path}: {len(errors)} error(s):", *(f"  {error}" for error in errors)]


def named_variables(config: Config) -> set[str]:
    """The environment variables a config names (jobs' ``env``, clusters' passphrases,
    monitors' webhooks)."""
    names = {name for ns in config.namespaces.values() for job in ns.jobs.values()
             for name in job.env}
    names |= {n for c in config.clusters.values() for n in (c.key_passphrase_env, c.password_env)
              if n}
    names |= {name for m in config.monitors.values() for name in m.webhook_variables}
    return names


def tell_admins(queue: Queue, config: Config, text: str) -> None:
    """To the log, and to the admin channel when job_configs.py names one."""
    log.warning("for the admins: %s", text)
    if config.admin_channel:
        try:
            alarms.queue_notice(queue, config.admin_channel, text)
        except Exception:  # it is in the log; the service goes on
            log.exception("could not tell the admin channel %s", config.admin_channel)


class LiveConfig:
    def __init__(self, settings: Settings, queue: Queue, config: Config, role: str,
                 apply: Sequence[Apply] = ()):
        self.settings = settings
        self.queue = queue
        self.config = config
        self.role = role
        self.apply = list(apply)
        self.path = settings.config_path
        self.hash = file_hash(self.path)
        self.loaded_at = time.time()
        self.rejected: str | None = None
        self.host = socket.gethostname()
        self.id = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._poke_read, self._poke_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread: threading.Thread | None = None

    # -- running ----------------------------------------------------------------------------

    def start(self) -> LiveConfig:
        now = time.time()
        with self.queue.engine.begin() as conn:
            conn.execute(insert(processes).values(
                id=self.id, role=self.role, host=self.host, pid=os.getpid(), started_at=now,
                seen_at=now, config_hash=self.hash, config_loaded_at=self.loaded_at))
        # Watching starts now, before this process says it is up: no edit slips through.
        selector = selectors.DefaultSelector()
        listener = wakeup.Listener(self.settings.run_dir, TOPIC)
        selector.register(listener, selectors.EVENT_READ, "reload")
        selector.register(self._poke_read, selectors.EVENT_READ, "poke")
        watch = None
        try:
            watch = FileWatch(self.path)
            selector.register(watch, selectors.EVENT_READ, "watch")
        except OSError as exc:
            log.warning("cannot watch %s (%s): edits apply on SIGHUP or `chatops config "
                        "reload`", self.path, exc)
        self._thread = threading.Thread(target=self._run, args=(selector, listener, watch),
                                        name="live-config", daemon=True)
        self._thread.start()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, lambda signum, frame: self.poke())
        return self

    def poke(self) -> None:
        """Look at the file now (SIGHUP; safe in a signal handler)."""
        try:
            os.write(self._poke_write, b"!")
        except BlockingIOError:
            pass  # already poked

    def close(self) -> None:
        self._stop.set()
        self.poke()
        if self._thread is not None:
            self._thread.join(5)
        self._record(stopped_at=time.time())

    def _run(self, selector: selectors.BaseSelector, listener: wakeup.Listener,
             watch: FileWatch | None) -> None:
        next_beat = time.time() + HEARTBEAT_SECONDS
        try:
            while not self._stop.is_set():
                events = selector.select(max(0.0, next_beat - time.time()))
                wanted = False
                for key, _ in events:
                    if key.data == "watch":
                        wanted = watch.changed() or wanted
                    elif key.data == "reload":
                        wanted = listener.drain() or wanted
                    else:
                        _drain(self._poke_read)
                        wanted = True
                if wanted and not self._stop.is_set():
                    self._settle(selector, watch)
                    self._check_safely()
                if time.time() >= next_beat:
                    self._beat()
                    next_beat = time.time() + HEARTBEAT_SECONDS
        finally:
            listener.close()
            if watch is not None:
                watch.close()

    def _settle(self, selector: selectors.BaseSelector, watch: FileWatch | None) -> None:
        """Wait until the file has been quiet for a moment (an editor may write in bursts)."""
        while watch is not None and selector.select(SETTLE_SECONDS):
            if not watch.changed():
                break

    def _check_safely(self) -> None:
        try:
            self.check()
        except Exception:  # the database may be away for a moment: keep running
            log.exception("checking %s failed", self.path)

    def _beat(self) -> None:
        try:
            self._record()
        except Exception as exc:
            if storage.fault(exc) is None:  # (a full disk: the dispatcher and /healthz say so)
                log.exception("could not record this process's heartbeat")

    def _record(self, **values: object) -> None:
        with self.queue.engine.begin() as conn:
            conn.execute(update(processes).where(processes.c.id == self.id)
                         .values(seen_at=time.time(), **values))

    # -- checking ---------------------------------------------------------------------------

    def check(self) -> str:
        """Load the file if it changed: 'unchanged', 'applied' or 'rejected'."""
        try:
            digest = file_hash(self.path)
        except OSError as exc:
            return self._reject("missing", [f"{self.path}: cannot be read: {exc}"])
        if digest == self.hash:
            if self.rejected is not None:  # the broken edit was undone
                self.rejected = None
                self._record(rejected_hash=None)
            log.info("%s is unchanged (version %s)", self.path, digest[:12])
            return "unchanged"
        if digest == self.rejected:
            log.info("%s still has the errors reported before; version %s stays in use",
                     self.path, self.hash[:12])
            return "rejected"
        try:
            config = load_config(self.path)
        except ConfigError as exc:
            return self._reject(digest, exc.errors)
        if file_hash(self.path) != digest:
            return self.check()  # written again while it was read: read the newer one
        self._swap(config, digest)
        return "applied"

    def _swap(self, config: Config, digest: str) -> None:
        self.config, self.hash, self.loaded_at, self.rejected = config, digest, time.time(), None
        redact.install(self.settings, config)  # the secrets it names, before anything logs them
        for apply in self.apply:
            apply(config)
        self._record(config_hash=digest, config_loaded_at=self.loaded_at, rejected_hash=None)
        log.info("%s applied (version %s): %d namespaces, %d schedules", self.path,
                 digest[:12], len(config.namespaces), len(config.schedules()))
        missing = sorted(named_variables(config) - set(self.settings.environ))
        if missing:
            tell_admins(self.queue, config, f"{self.path} names environment variable(s) "
                        f"{', '.join(missing)} that {self.role} (pid {os.getpid()}) was not "
                        "started with: secrets are read only at start, so restart it to use "
                        "them.")

    def _reject(self, digest: str, errors: Sequence[str]) -> str:
        self.rejected = digest
        text = "\n".join(error_lines(self.path, errors))
        log.error("%s\nthe running config (version %s) stays in use", text, self.hash[:12])
        self._record(rejected_hash=digest)
        with self.queue.engine.begin() as conn:
            first = conn.execute(insert_new(
                self.queue.engine, config_rejections, config_hash=digest, errors=text,
                seen_at=time.time(), seen_by=self.id)).scalar() is not None
        if first:  # once per edit, whichever process saw it first
            tell_admins(self.queue, self.config,
                        f"{text}\nThe service keeps running the previous version "
                        f"({self.hash[:12]}); fix the file and it is applied.")
        return "rejected"


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 64):
            pass
    except BlockingIOError:
        pass


def follow(service: Service, role: str, handlers: Sequence[Any] = (), *more: Apply
           ) -> LiveConfig:
    """Follow job_configs.py in this process: ``service``, the command ``handlers`` and the
    ``more`` callbacks get each new version."""
    def swap(config: Config) -> None:
        service.config = config
        for handler in handlers:
            handler.config = config

    return LiveConfig(service.settings, service.queue, service.config, role,
                      [swap, *more]).start()


def running_processes(queue: Queue, now: float | None = None) -> list:
    """The processes that said they are alive lately, with the config version each runs."""
    now = time.time() if now is None else now
    with reading(queue.engine) as conn:
        return list(conn.execute(
            select(processes).where(processes.c.stopped_at.is_(None),
                                    processes.c.seen_at > now - 2 * HEARTBEAT_SECONDS - 5)
            .order_by(processes.c.role, processes.c.started_at)))
