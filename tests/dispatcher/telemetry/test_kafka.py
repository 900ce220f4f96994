"""`chatops telemetry` as a process against a real Kafka-protocol broker (Tansu): what it
publishes, broker outages (nothing lost, order kept), the buffer's bound, control messages,
the lock, SIGTERM and SIGHUP, and the HTTP sink."""

from __future__ import annotations

import base64
import http.server
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatops.kafka import BrokerSettings, publish_control
from dispatcher.telemetry.buffer import DiskBuffer
from dispatcher.telemetry.envelope import host_name
from dispatcher.telemetry.kafka import KafkaSink
from dispatcher.telemetry.sender import Sender
from tests.chatops.slurm.test_client_live import cluster  # noqa: F401 - the fixture
from tests.support.kafka import Broker, Proxy, Reader
from tests.support.serving import serve_in_thread
from tests.support.sonar_format import problems
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # a broker or the test cluster, and many seconds
CHATOPS = str(Path(sys.executable).parent / "chatops")
NODE = host_name()


class Daemon:
    """One `chatops telemetry CONFIG` process; its stdout (the debug dump) and stderr kept."""

    def __init__(self, directory: Path, ini: str):
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.config = directory / "telemetry.ini"
        self.config.write_text(ini)
        self.buffer = directory / "buffer"
        self.process: subprocess.Popen | None = None

    def start(self) -> Daemon:
        self.process = subprocess.Popen(
            [CHATOPS, "telemetry", str(self.config)], stdout=open(self.dir / "stdout", "wb"),
            stderr=open(self.dir / "stderr", "wb"), stdin=subprocess.DEVNULL,
            start_new_session=True)
        self.wait_log("telemetry daemon for")
        return self

    def log(self) -> str:
        return (self.dir / "stderr").read_text(errors="replace")

    def dumped(self) -> list[dict]:
        """What the daemon says it sent ([debug] dump), in order."""
        text = (self.dir / "stdout").read_text()
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    def wait_log(self, text: str, deadline: float = 30) -> None:
        wait_until(lambda: text in self.log() or (self.process.poll() is not None and
                                                pytest.fail(f"daemon exited:\n{self.log()}")),
                 deadline, f"{text!r} in the daemon's log:\n{self.log()}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, deadline: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(deadline)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def buffered(self) -> list[Path]:
        return sorted(self.buffer.glob("*.msg"))


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("tansu") / "tansu.log")
    yield broker
    broker.stop()


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def make(directory: Path, ini: str) -> Daemon:
        daemon = Daemon(directory, ini)
        started.append(daemon)
        return daemon
    yield make
    for daemon in started:
        daemon.kill()


def ini(tmp: Path, name: str, cluster_name: str, role: str, broker: str, *sections: str) -> str:
    return (f"[global]\ncluster = {cluster_name}\nrole = {role}\n"
            f"buffer-directory = {tmp / name / 'buffer'}\n"
            f"[kafka]\nbroker-address = {broker}\nsending-window = 1s\npoll-interval = 1s\n"
            + "".join(sections))


def data_time(envelope: dict) -> str:
    return envelope["data"]["attributes"]["time"]


def test_node_and_master_publish_valid_envelopes(kafka_broker, cluster, tmp_path,  # noqa: F811
                                                 daemons):
    topics = [f"tp.pub.example.{t}" for t in ("sample", "sysinfo", "job", "cluster")]
    kafka_broker.create_topics(*topics, "tp.pub.example.control.node",
                               "tp.pub.example.control.master")
    node = daemons(tmp_path / "node", ini(
        tmp_path, "node", "pub.example", "node", kafka_broker.address,
        "compression = gzip\n[global]\ntopic-prefix = tp\n[sample]\ncadence = 1s\n"
        "exclude-system-jobs = false\n[sysinfo]\ncadence = 1h\n")).start()
    master = daemons(tmp_path / "master", ini(
        tmp_path, "master", "pub.example", "master", kafka_broker.address,
        "compression = snappy\n[global]\ntopic-prefix = tp\n[jobs]\ncadence = 2s\n"
        "window = 1h\nuncompleted = true\ndelta-coding = true\n[cluster]\ncadence = 2s\n"))
    master.start()
    reader = Reader(kafka_broker.address, *topics)
    try:
        seen = reader.until(lambda ms: {t for t, _, _ in ms} == set(topics) and len(
            [1 for t, _, _ in ms if t.endswith(".job")]) >= 2, 60, "every type, jobs twice")
    except AssertionError as missing:  # what the master said instead
        raise AssertionError(f"{missing}\nthe master's log:\n{master.log()}") from None
    finally:
        reader.close()
    for name, key, envelope in seen:
        kind = name.rsplit(".", 1)[1]
        assert problems(kind, envelope) == [], (name, envelope)
        assert key == NODE
        assert envelope["meta"]["producer"] == "hpc-chatops"
        assert envelope["data"]["attributes"]["cluster"] == "pub.example"
    samples = [e for t, _, e in seen if t.endswith(".sample")]
    assert any(p["cmd"] == "chatops" for j in samples[-1]["data"]["attributes"]["jobs"]
               for p in j["processes"])  # the daemons themselves, sampled
    jobs = [e for t, _, e in seen if t.endswith(".job")]
    assert jobs[0]["meta"]["attrs"] == [{"key": "job-records", "value": "full"}]
    assert node.stop() == 0 and master.stop() == 0
    assert node.buffered() == [] and master.buffered() == []


def test_a_message_larger_than_the_broker_takes_is_put_aside_and_the_rest_goes_on(
        kafka_broker, tmp_path):
    kafka_broker.create_topics("big.example.job")
    buffer = DiskBuffer(tmp_path / "buffer", limit=50 * 1024 * 1024)
    buffer.put("big.example.job", "head", "job", b'{"n": 1}')
    buffer.put("big.example.job", "head", "job", b'"' + b"x" * 1_200_000 + b'"')
    buffer.put("big.example.job", "head", "job", b'{"n": 3}')
    sender = Sender(buffer, KafkaSink(BrokerSettings(kafka_broker.address), 30), 0)
    sender.start()
    reader = Reader(kafka_broker.address, "big.example.job")
    try:
        seen = reader.until(lambda ms: len(ms) >= 2, 60, "the messages around the big one")
    finally:
        reader.close()
        assert sender.stop(10) == 0
    assert [e for _, _, e in seen] == [{"n": 1}, {"n": 3}]
    assert buffer.rejected == 1
    [kept] = (tmp_path / "buffer" / "rejected").iterdir()
    assert kept.stat().st_size > 1_200_000  # not lost: kept for the admin to look at


def test_a_broker_stopped_for_60_seconds_loses_nothing(tmp_path, daemons):
    broker = Broker(tmp_path / "tansu.log")
    try:
        broker.create_topics("out.example.sample", "out.example.control.node")
        daemon = daemons(tmp_path / "node", ini(
            tmp_path, "node", "out.example", "node", broker.address,
            "[sample]\ncadence = 2s\n[debug]\ndump = true\n")).start()
        reader = Reader(broker.address, "out.example.sample")
        reader.until(lambda ms: len(ms) >= 2, 30, "two samples before the outage")
        broker.pause()  # SIGSTOP: connections stay open, nothing answers
        paused = time.monotonic()
        wait_until(lambda: len(daemon.buffered()) >= 25 or None, 90,
                 "25 samples waiting on disk")
        while time.monotonic() - paused < 60:
            time.sleep(0.5)  # the outage itself: a duration, not a wait for a fact
        broker.resume()
        wait_until(lambda: daemon.buffered() == [] or None, 120, "the buffer drained")
        assert daemon.stop() == 0
        reader.until(lambda ms: len(ms) >= len(daemon.dumped()), 60, "everything sent")
        sent = [data_time(d["value"]) for d in daemon.dumped()]
        received = [data_time(e) for _, _, e in reader.messages]
        assert len(sent) >= 32
        assert received == sent  # nothing lost, nothing twice, in order
        reader.close()
    finally:
        broker.stop()


def test_the_buffer_bound_drops_the_oldest_and_says_how_many(tmp_path, daemons):
    broker = Broker(tmp_path / "tansu.log")
    try:
        broker.create_topics("bound.example.sample", "bound.example.control.node")
        daemon = daemons(tmp_path / "node", ini(
            tmp_path, "node", "bound.example", "node", broker.address,
            "[global]\nbuffer-size = 6K\n[sample]\ncadence = 1s\nload = false\n"
            "[debug]\ndump = true\n")).start()
        reader = Reader(broker.address, "bound.example.sample")
        reader.until(lambda ms: len(ms) >= 1, 30, "a sample before the outage")
        broker.pause()
        daemon.wait_log("buffer full", 60)
        wait_until(lambda: daemon.log().count("buffer full") >= 3 or None, 60,
                 "three evictions")
        broker.resume()
        wait_until(lambda: daemon.buffered() == [] or None, 60, "the buffer drained")
        # An eviction is reported by the envelopes made after it: wait for one made now.
        drained = len(daemon.dumped())
        wait_until(lambda: len(daemon.dumped()) > drained or None, 30, "a sample after the drain")
        assert daemon.stop() == 0
        sent = [data_time(d["value"]) for d in daemon.dumped()]
        reader.until(lambda ms: data_time(ms[-1][2]) == sent[-1], 30, "the last sample")
        received = [data_time(e) for _, _, e in reader.messages]
        assert received == [t for t in sent if t in received]  # in order, no duplicates
        attrs = reader.messages[-1][2]["meta"]["attrs"]
        assert attrs == [{"key": "buffer-evicted", "value": str(len(sent) - len(received))}]
        assert len(sent) - len(received) >= 3
        reader.close()
    finally:
        broker.stop()


def test_a_refused_connection_is_logged_and_retried(tmp_path, daemons):
    broker = Broker(tmp_path / "tansu.log")
    proxy = Proxy(broker.port)
    try:
        broker.create_topics("refused.example.sample", "refused.example.control.node")
        proxy.close()  # the port refuses connections
        daemon = daemons(tmp_path / "node", ini(
            tmp_path, "node", "refused.example", "node", proxy.address,
            "[sample]\ncadence = 1s\n[debug]\ndump = true\n")).start()
        daemon.wait_log("Connection refused", 60)
        wait_until(lambda: len(daemon.buffered()) >= 3 or None, 60, "samples kept on disk")
        proxy.reopen()
        wait_until(lambda: daemon.buffered() == [] or None, 120, "the buffer drained")
        assert daemon.stop() == 0
        reader = Reader(broker.address, "refused.example.sample")
        sent = [data_time(d["value"]) for d in daemon.dumped()]
        reader.until(lambda ms: len(ms) >= len(sent), 60, "every sample")
        assert [data_time(e) for _, _, e in reader.messages] == sent
        reader.close()
    finally:
        proxy.close()
        broker.stop()


def test_control_messages_exit_and_dump(kafka_broker, tmp_path, daemons):
    control = "ctl.example.control.node"
    kafka_broker.create_topics("ctl.example.sample", "ctl.example.sysinfo", control)
    broker = BrokerSettings(kafka_broker.address)
    from confluent_kafka import Producer

    old = Producer({"bootstrap.servers": kafka_broker.address})  # last week's exit, for all
    old.produce(control, key=b"", value=b'{"command": "exit"}',
                timestamp=int((time.time() - 7 * 86400) * 1000))
    old.flush(10)
    daemon = daemons(tmp_path / "node", ini(
        tmp_path, "node", "ctl.example", "node", kafka_broker.address,
        "control-max-age = 10m\n[sample]\ncadence = 1s\nload = false\n")).start()
    daemon.wait_log("control message ignored: 'exit' was sent")
    publish_control(broker, control, "exit", node="some-other-node")
    publish_control(broker, control, "reboot", node=NODE)
    Producer({"bootstrap.servers": kafka_broker.address}).produce(control, key=b"",
                                                                  value=b"exit now")
    publish_control(broker, control, "dump", True, node=NODE)
    daemon.wait_log("control message: dump true")
    assert "control message ignored: unknown command 'reboot' (known: exit, dump)" in \
        daemon.log()
    assert "control message: exit" not in daemon.log()  # not for this node
    wait_until(lambda: len(daemon.dumped()) >= 2 or None, 30, "the dump on stdout")
    assert daemon.dumped()[0]["topic"] == "ctl.example.sample"
    publish_control(broker, control, "dump", False)  # for every node
    daemon.wait_log("control message: dump false")
    dumped = len(daemon.dumped())
    reader = Reader(kafka_broker.address, "ctl.example.sample")
    after = time.time() + 2
    reader.until(lambda ms: any(time.mktime(time.strptime(data_time(e)[:19],
                                                          "%Y-%m-%dT%H:%M:%S")) >= after
                                for _, _, e in ms), 30, "samples after the dump stopped")
    reader.close()
    assert len(daemon.dumped()) <= dumped + 1  # one may have been on its way
    publish_control(broker, control, "exit")
    assert daemon.process.wait(30) == 0
    assert "control message: exit" in daemon.log()
    assert daemon.buffered() == []


def test_a_second_daemon_on_the_same_lock_directory_exits(kafka_broker, tmp_path, daemons):
    locks = tmp_path / "locks"
    sections = f"[global]\nlock-directory = {locks}\n[sysinfo]\ncadence = 1h\n"
    first = daemons(tmp_path / "a", ini(tmp_path, "a", "lock.example", "node",
                                        kafka_broker.address, sections)).start()
    second = daemons(tmp_path / "b", ini(tmp_path, "b", "lock.example", "node",
                                         kafka_broker.address, sections))
    result = subprocess.run([CHATOPS, "telemetry", str(second.config)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 3
    assert result.stderr == (f"chatops telemetry: another telemetry daemon (pid "
                             f"{first.process.pid}) holds {locks}/chatops-telemetry.lock: stop "
                             "it first, or give this one another lock-directory\n")
    assert first.stop() == 0
    assert subprocess.run([CHATOPS, "telemetry", "check", str(second.config)],
                          capture_output=True, timeout=60).returncode == 0


def test_sigterm_sends_what_is_buffered(kafka_broker, tmp_path, daemons):
    kafka_broker.create_topics("term.example.sample", "term.example.control.node")
    daemon = daemons(tmp_path / "node", ini(
        tmp_path, "node", "term.example", "node", kafka_broker.address,
        "[sample]\ncadence = 1s\nload = false\n[debug]\ndump = true\noutput-delay = 1h\n"))
    daemon.start()
    wait_until(lambda: len(daemon.buffered()) >= 3 or None, 30, "three samples held back")
    daemon.signal(signal.SIGTERM)
    assert daemon.process.wait(60) == 0
    assert daemon.buffered() == []
    sent = [data_time(d["value"]) for d in daemon.dumped()]
    reader = Reader(kafka_broker.address, "term.example.sample")
    reader.until(lambda ms: len(ms) >= len(sent), 30, "every sample")
    assert [data_time(e) for _, _, e in reader.messages] == sent
    reader.close()


def test_sighup_reads_the_configuration_again(kafka_broker, tmp_path, daemons):
    kafka_broker.create_topics("a.hup.example.sysinfo", "b.hup.example.sysinfo")
    sections = "[global]\ntopic-prefix = {}\n[sysinfo]\ncadence = 1h\n"
    text = ini(tmp_path, "node", "hup.example", "node", kafka_broker.address, sections)
    daemon = daemons(tmp_path / "node", text.format("a")).start()
    reader = Reader(kafka_broker.address, "a.hup.example.sysinfo", "b.hup.example.sysinfo")
    reader.until(lambda ms: [t for t, _, _ in ms] == ["a.hup.example.sysinfo"], 30,
                 "sysinfo under the first prefix")
    daemon.config.write_text(text.format("b"))
    daemon.signal(signal.SIGHUP)
    reader.until(lambda ms: ms[-1][0] == "b.hup.example.sysinfo", 30,
                 "sysinfo under the new prefix (on-startup again)")
    daemon.config.write_text(text.format("b") + "[sample]\ncadence = 7m\n")
    daemon.signal(signal.SIGHUP)
    daemon.wait_log("going on with the running configuration")
    assert f"{daemon.config}:14: [sample] cadence: '7m': a cadence must divide the hour" in \
        daemon.log()
    assert daemon.process.poll() is None
    assert daemon.stop() == 0
    reader.close()


class Collector(http.server.BaseHTTPRequestHandler):
    """A stand-in for Sonar's HTTP ingestion endpoint: Basic credentials, POST per envelope."""

    received: list[tuple[str, str, dict]] = []
    password = "s3cret"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "Basic " + base64.b64encode(f"http.example:{self.password}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.end_headers()
            return
        Collector.received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_the_http_sink_posts_each_envelope(tmp_path, daemons):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    serve_in_thread(server)
    password_file = tmp_path / "password"
    password_file.write_text("wrong\n")
    config = (f"[global]\ncluster = http.example\nrole = node\ntopic-prefix = tp\n"
              f"buffer-directory = {tmp_path / 'node' / 'buffer'}\n[http]\napi-root = "
              f"http://127.0.0.1:{server.server_port}/api/v0/insert\nsending-window = 1s\n"
              f"upload-password-file = {password_file}\n[sysinfo]\ncadence = 1h\n"
              "[sample]\ncadence = 2s\nload = false\n")
    try:
        daemon = daemons(tmp_path / "node", config).start()
        daemon.wait_log("answered 401 Unauthorized", 30)
        assert daemon.buffered() != [] and Collector.received == []
        password_file.write_text("s3cret\n")
        daemon.signal(signal.SIGHUP)  # the password is read at start
        wait_until(lambda: len(Collector.received) >= 3 or None, 60, "three POSTs")
        assert daemon.stop() == 0
    finally:
        server.shutdown()
    paths = {path for path, _, _ in Collector.received}
    assert paths == {"/api/v0/insert/tp.sysinfo", "/api/v0/insert/tp.sample"}
    for path, content_type, envelope in Collector.received:
        assert content_type == "application/json"
        assert problems(path.rsplit(".", 1)[1], envelope) == []
    assert "s3cret" not in daemon.log()
