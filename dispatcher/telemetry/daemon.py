"""The daemon: locks, sink, buffer, sender and control consumer around the operations' loop.

SIGTERM and SIGINT stop it: it sends what is buffered (for up to ``STOP_GRACE`` seconds; the
rest stays on disk for the next start) and exits 0. SIGHUP re-reads the ini file: a valid file
replaces the running configuration (locks, sink and collectors are reopened; the buffer is
kept), an invalid one is logged and the daemon goes on as it was. (Sonar stops on SIGHUP.)
"""

from __future__ import annotations

import json
import logging
import math
import queue
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from dispatcher.telemetry import control
from dispatcher.telemetry.buffer import DiskBuffer
from dispatcher.telemetry.cadence import Clock, Schedule, SystemClock
from dispatcher.telemetry.config import Config, ConfigError, load_config
from dispatcher.telemetry.envelope import Envelopes, encode, host_name, topic
from dispatcher.telemetry.lock import DirectoryLock, LockHeld
from dispatcher.telemetry.operations import Operations, redacted
from dispatcher.telemetry.sender import Sender, Sink
from dispatcher.telemetry.sinks import DirectorySink, HttpSink, StdioSink

if TYPE_CHECKING:  # kafka is imported only when a [kafka] section is configured
    from chatops.kafka import BrokerSettings

log = logging.getLogger(__name__)

EXIT_CONFIG = 2  # the configuration is wrong, or names files that are not here
EXIT_ENVIRONMENT = 3  # another daemon holds the lock, a directory cannot be made
STOP_GRACE = 20.0  # seconds to send what is buffered when stopping


class StartError(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _read_secret(path: str | None, what: str) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise StartError(f"cannot read the {what} {path}: {exc.strerror}", EXIT_CONFIG) from exc


class Daemon:
    def __init__(self, config: Config, clock: Clock | None = None):
        self.config = config
        self.clock = clock or SystemClock()
        self.wake = threading.Event()
        self.stopping = False
        self.reloading = False
        self.dump = config.debug.dump
        self.locks: list[DirectoryLock] = []
        self.commands: queue.Queue[control.Command] = queue.Queue()
        self.listener: threading.Thread | None = None

    # -------------------------------------------------------------------------- opening
    def open(self) -> None:
        """Take the locks and open buffer, sink, sender and control; StartError if not."""
        c = self.config
        missing = c.missing_files()
        if missing:
            raise StartError("\n".join(missing), EXIT_CONFIG)
        if c.kafka and not c.kafka.broker_address:
            raise StartError(f"{c.where('kafka', 'rest-endpoint')}: [kafka] rest-endpoint "
                             "(a Kafka REST proxy) is not built here: set broker-address",
                             EXIT_CONFIG)
        token = _read_secret(c.kafka.api_token_file if c.kafka else None, "API token file")
        self.node = host_name(c.hostname_only)
        self.names = (self.node, socket.gethostname())
        self.envelopes = Envelopes(c.cluster, self.node, token)
        try:
            for directory, what in ((c.lock_directory, "lock-directory"),
                                    (c.buffer_directory, "buffer-directory")):
                if directory:
                    lock = DirectoryLock(directory, what)
                    lock.acquire()
                    self.locks.append(lock)
            self.buffer = DiskBuffer(c.buffer_directory, c.buffer_size)
        except LockHeld as exc:
            self.close_locks()
            raise StartError(str(exc), EXIT_ENVIRONMENT) from exc
        except OSError as exc:
            self.close_locks()
            raise StartError(f"cannot use {exc.filename}: {exc.strerror} (set [global] "
                             "lock-directory / buffer-directory to a directory this user "
                             "may write)", EXIT_ENVIRONMENT) from exc
        try:
            self.sink = self._make_sink()
            self.listener = self._start_listener()
        except Exception as exc:  # librdkafka refusing its settings (an unreadable CA file...)
            self.close_locks()
            raise StartError(f"cannot set up the data sink: {exc}", EXIT_CONFIG) from exc
        window = (c.kafka or c.http).sending_window.seconds if (c.kafka or c.http) else 0
        self.sender = Sender(self.buffer, self.sink, window)
        self.sender_starts = self.clock.time() + (c.debug.output_delay.seconds
                                                  if c.debug.output_delay else 0)
        self.operations = Operations(c, self.envelopes, self._status_attrs)
        for warning in c.warnings:
            log.warning("%s", warning)
        log.info("telemetry daemon for %s (role %s) as %s: %s; sending to %s", c.cluster,
                 c.role, self.node, ", ".join(f"{op} every {s}s" for op, s in
                                              self.operations.cadences.items()) or "nothing",
                 self.sink.name)

    def _make_sink(self) -> Sink:
        c = self.config
        if c.kafka:
            from dispatcher.telemetry.kafka import KafkaSink

            return KafkaSink(self._broker(), c.kafka.timeout.seconds)
        if c.http:
            password = c.http.upload_password or _read_secret(c.http.upload_password_file,
                                                               "upload password file")
            return HttpSink(c.http.api_root, c.cluster, password, c.http.ca_file,
                            c.http.http_proxy, c.topic_prefix,
                            min(c.http.timeout.seconds, 300))
        if c.data_directory:
            return DirectorySink(c.data_directory)
        return StdioSink(f"{c.cluster}/{self.node}")

    def _broker(self) -> BrokerSettings:
        from chatops.kafka import BrokerSettings

        k = self.config.kafka
        password = k.sasl_password or _read_secret(k.sasl_password_file, "SASL password file")
        return BrokerSettings(k.broker_address, k.ca_file, k.cert_file, k.key_file,
                              self.config.cluster if password else None, password,
                              k.compression, client_id=f"{self.config.cluster}/{self.node}")

    def _start_listener(self) -> threading.Thread | None:
        """Control messages are read in a thread of their own (a broker that does not answer
        must not hold up the operations); commands reach the loop through ``self.commands``."""
        c = self.config
        if not c.kafka:
            return None
        from dispatcher.telemetry.kafka import ControlConsumer

        name = topic(c.topic_prefix, c.cluster, f"control.{c.role}")
        consumer = ControlConsumer(self._broker(), name,
                                   f"chatops-telemetry.{name}.{self.node}")
        closing = self.listener_closing = threading.Event()

        def listen() -> None:
            interval, max_age = c.kafka.poll_interval.seconds, c.kafka.control_max_age.seconds
            try:
                while not closing.is_set():
                    for record in consumer.poll():
                        command = control.interpret(record.key, record.value, record.timestamp,
                                                    self.names, self.clock.time(), max_age)
                        if command is not None:
                            self.commands.put(command)
                            self.wake.set()
                    consumer.commit()
                    closing.wait(interval)
            finally:
                consumer.close()

        listener = threading.Thread(target=listen, name="telemetry-control", daemon=True)
        listener.start()
        return listener

    def _status_attrs(self) -> list[tuple[str, str]]:
        counts = (("buffer-evicted", self.buffer.evicted), ("rejected", self.buffer.rejected))
        return [(name, str(count)) for name, count in counts if count]

    # -------------------------------------------------------------------------- running
    def run(self, signals: bool = True) -> int:
        if signals:
            self._signals()
        start = self.clock.time()
        schedule = Schedule(self.operations.cadences, start, self.operations.at_start)
        while not self.stopping:
            if self.reloading:
                schedule = self._reload() or schedule
            c, now = self.config, self.clock.time()
            if self.sender.ident is None and now >= self.sender_starts:
                self.sender.start()
            for op in schedule.due(now):
                for envelope in self.operations.run(op, now):
                    self._emit(op, envelope)
                if c.debug.oneshot:
                    self.stopping = True
            self._obey()
            if c.debug.time_limit and now - start >= c.debug.time_limit.seconds:
                log.info("time-limit reached")
                break
            if self.stopping:
                break
            wake_at = min(schedule.next_due(),
                          math.inf if self.sender.ident is not None else self.sender_starts,
                          start + c.debug.time_limit.seconds if c.debug.time_limit
                          else math.inf)
            self.clock.wait(wake_at - self.clock.time(), self.wake)
            self.wake.clear()
        self.close()
        return 0

    def _emit(self, kind: str, envelope: dict) -> None:
        key = self.node
        name = topic(self.config.topic_prefix, self.config.cluster, kind)
        self.buffer.put(name, key, kind, encode(envelope))
        if self.dump:
            sys.stdout.write(json.dumps({"topic": name, "key": key,
                                         "value": redacted(envelope)},
                                        separators=(",", ":")) + "\n")
            sys.stdout.flush()

    def _obey(self) -> None:
        while not self.commands.empty():
            command = self.commands.get()
            log.info("control message: %s%s", command.name,
                     "" if command.value is None else f" {str(command.value).lower()}")
            if command.name == "exit":
                self.stopping = True
            elif command.name == "dump":
                self.dump = command.value

    def _signals(self) -> None:
        def stop(signum: int, frame: object) -> None:
            self.stopping = True
            self.wake.set()

        def reload(signum: int, frame: object) -> None:
            self.reloading = True
            self.wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def _reload(self) -> Schedule | None:
        """SIGHUP: the new configuration, or the old one if the new one is wrong."""
        self.reloading = False
        try:
            config = load_config(self.config.path)
        except ConfigError as exc:
            log.error("SIGHUP: %s has %d error(s); going on with the running configuration:\n"
                      "%s", self.config.path, len(exc.errors), "\n".join(exc.errors))
            return None
        log.info("SIGHUP: reading %s again", self.config.path)
        old = self.config
        self.close()
        self.config, self.dump = config, config.debug.dump
        try:
            self.open()
        except StartError as exc:
            log.error("SIGHUP: the new configuration cannot start (%s); back to the running "
                      "one", exc)
            self.config, self.dump = old, old.debug.dump
            self.open()
        now = self.clock.time()
        return Schedule(self.operations.cadences, now, self.operations.at_start)

    # -------------------------------------------------------------------------- closing
    def close(self) -> None:
        if self.sender.ident is None:  # still in its output-delay: flush all the same
            self.sender.flushing.set()
            self.sender.start()
        self.sender.stop(STOP_GRACE)
        if self.listener is not None:
            self.listener_closing.set()
            self.listener.join(15)
            self.listener = None
        self.close_locks()

    def close_locks(self) -> None:
        for lock in self.locks:
            lock.release()
        self.locks = []


def run_daemon(config_path: str) -> int:
    """``chatops telemetry CONFIG``: exit 0 after a stop, 2 for a wrong configuration, 3 when
    another daemon holds the lock or a directory cannot be used."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"{config_path}: {len(exc.errors)} error(s); nothing started:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        for warning in exc.warnings:
            print(f"  warning: {warning}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(level=logging.DEBUG if config.debug.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    if not config.debug.verbose:
        logging.getLogger("librdkafka").setLevel(logging.WARNING)
    daemon = Daemon(config)
    try:
        daemon.open()
    except StartError as exc:
        print(f"chatops telemetry: {exc}", file=sys.stderr)
        return exc.code
    return daemon.run()
