"""The cluster monitor against the real test cluster: a drained node is reported with its
reason and its return; an unreachable cluster goes offline after two failed polls while local
jobs still run; one poller per cluster whatever the number of dispatchers."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from chatops import migrate, outbound
from chatops import monitor_store as store
from chatops.config_loader import build_config
from chatops.db import deliveries, make_engine
from chatops.monitor_tables import monitor_states, monitor_transitions
from chatops.platform import take_waiting
from tests.support.remote import Harness, cluster_env, cluster_settings
from tests.support.wait import wait_until

JOBS = {"local": {"jobs": {"echo": {"run_args_template": "echo local {word}",
                                    "report_stdout": True}},
                  "slack": [{"command": "echo [word]", "help": "echo", "action": "schedule_job",
                             "job_type": "echo"}]}}


def scontrol(*words: str) -> None:
    subprocess.run(["scontrol", "update", *words], check=True, capture_output=True, timeout=30)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Console:
    """The messages delivered to one console channel, as its reader sees them."""

    def __init__(self, harness: Harness, channel: str):
        self.harness, self.channel, self.seen = harness, channel, []

    def wait_for(self, pattern: str, timeout: float = 30) -> str:
        from chatops.plain_text import render_delivery

        def found() -> str | None:
            self.seen += [render_delivery(d) for d in
                          take_waiting(self.harness.queue, "console", self.channel)]
            return next((m for m in self.seen if re.search(pattern, m)), None)

        message = wait_until(found, timeout, f"a message matching {pattern!r} (got {self.seen})")
        self.seen.remove(message)
        return message


@pytest.mark.slow
def test_a_drained_node_is_reported_with_its_reason_and_its_return(tmp_path: Path,
                                                                    node: str) -> None:
    env = cluster_env()
    channel = f"mon-{uuid.uuid4().hex[:8]}"
    # (offline_after 10: a brief restart of slurmctld by someone else's test is no outage)
    harness = Harness(tmp_path / "home", {}, {"testcluster": cluster_settings(env)},
                      monitors={"testcluster": {"cadence": "1s", "timeout": 1,
                                                "offline_after": 10,
                                                "targets": [f"console:{channel}"]}})
    console = Console(harness, channel)
    try:
        board = console.wait_for(r"testcluster: (ONLINE|DEGRADED) for")
        assert "PARTITION  IDLE  ALLOC  MIXED  OTHER  TOTAL  CPUS(A/I/O/T)\ndebug" in board
        scontrol(f"nodename={node}", "state=drain", "reason=disk replace")
        drained = console.wait_for(r"^🟡 testcluster is DEGRADED \(online for ")
        assert re.search(rf"• {node} drain(ed|ing): 'disk replace' \(since \d\d:\d\d\)", drained)
        edited = console.wait_for(r"^🟡 testcluster: DEGRADED for ")  # the board, edited
        assert re.search(rf"Problem nodes:\n• {node} drain(ed|ing): 'disk replace'", edited)
        with harness.queue.engine.connect() as conn:  # one board row, revised in place
            [(board, revision)] = conn.execute(select(deliveries.c.id, deliveries.c.revision)
                                               .where(deliveries.c.channel == channel,
                                                      deliveries.c.payload.like('%"live"%')))
        assert revision >= 1
        # Someone deleted the board in the chat: its edit failed for good (a dead row).
        outbound.dead(harness.queue.engine, board, "Unknown Message (the message was deleted)")
        scontrol(f"nodename={node}", "state=resume")
        back = console.wait_for(r"^🟢 testcluster is ONLINE \(degraded for ")
        assert re.search(rf"• {node} back to ", back)
        console.wait_for(r"^🟢 testcluster: ONLINE for ")  # a new board
        with harness.queue.engine.connect() as conn:
            boards = conn.execute(select(deliveries.c.id).where(
                deliveries.c.channel == channel, deliveries.c.payload.like('%"live"%'))
                .order_by(deliveries.c.id)).scalars().all()
        assert boards[0] == board and len(boards) == 2
        assert store.boards(harness.queue.engine, "testcluster")[
            f"console:{channel}"].delivery_id == boards[1]
    finally:
        harness.stop()
    engine = harness.queue.engine
    history = store.transitions(engine, "testcluster", 0)
    assert [(t.node, t.from_state, t.to_state) for t in history if t.node is None] == [
        (None, None, "online"), (None, "online", "degraded"), (None, "degraded", "online")]
    assert [(t.to_state, t.reason) for t in history if t.node == node][0][1] == "disk replace"

    # A restart: the history is still there, the board is not posted again, chat answers.
    rows = rows_for(engine, channel)
    again = Harness(tmp_path / "home", {}, {"testcluster": cluster_settings(env)},
                    monitors={"testcluster": {"cadence": "1s", "timeout": 1,
                                              "targets": [f"console:{channel}"]}})
    try:
        wait_until(lambda: conn_holder(engine) == again.dispatcher.worker, 30, "a new poll")
        response, _ = again.chat("cluster status testcluster")
        status = response.replies[0].text
        assert status.startswith("🟢 testcluster: ONLINE for ")
        assert "Uptime: 100.0 % (24 h), 100.0 % (7 d)" in status
        response, _ = again.chat("cluster history testcluster")
        lines = response.replies[0].text.splitlines()
        assert lines[0].startswith("Changes on `testcluster` in the last 24h (")
        assert any(line.endswith("cluster online → degraded (vm drained)") or
                   line.endswith("cluster online → degraded (vm draining)") for line in lines)
        assert any(f"{node} drain" in line and "'disk replace'" in line for line in lines)
    finally:
        again.stop()
    assert rows_for(engine, channel) == rows  # no second board: the one there is edited


@pytest.mark.slow
def test_an_unreachable_cluster_goes_offline_after_two_polls_and_jobs_still_run(
        tmp_path: Path) -> None:
    env = cluster_env()
    channel = f"mon-{uuid.uuid4().hex[:8]}"
    clusters = {"gone": cluster_settings(env, port=closed_port())}
    harness = Harness(tmp_path / "home", JOBS, clusters,
                      monitors={"gone": {"cadence": "1s", "targets": [f"console:{channel}"]}})
    console = Console(harness, channel)
    try:
        board = console.wait_for(r"gone: OFFLINE for")
        assert "Error: cluster gone unreachable: connection refused" in board
        with harness.queue.engine.connect() as conn:
            row = conn.execute(select(monitor_states).where(monitor_states.c.cluster == "gone")
                               ).one()
        assert (row.state, row.failures) == ("offline", 2)
        job_id, report = harness.run("local echo hello", timeout=20)
        assert report == "local hello"
        added = f"mon-{uuid.uuid4().hex[:8]}"  # an edit of job_configs.py adds a target
        harness.dispatcher.reconfigure(build_config(JOBS, clusters, monitors={
            "gone": {"cadence": "1s", "targets": [f"console:{channel}", f"console:{added}"]}}))
        board = Console(harness, added).wait_for(r"gone: OFFLINE for")
        assert "Error: cluster gone unreachable: connection refused" in board
        harness.dispatcher.reconfigure(build_config(JOBS, clusters))  # the monitor removed
        wait_until(lambda: not harness.dispatcher.monitors._watches, 5, "the monitor to stop")
    finally:
        harness.stop()


@pytest.mark.slow
def test_two_dispatchers_poll_a_cluster_once_and_one_takes_over(tmp_path: Path,
                                                               pg_url: str) -> None:
    env = cluster_env()
    channel = f"mon-{uuid.uuid4().hex[:8]}"
    migrate.upgrade(make_engine(pg_url))
    monitors = {"testcluster": {"cadence": "1s", "timeout": 1, "post": "every poll",
                                "targets": [f"console:{channel}"]}}
    clusters = {"testcluster": cluster_settings(env)}
    first = Harness(tmp_path / "one", {}, clusters, monitors, CHATOPS_DATABASE_URL=pg_url)
    second = Harness(tmp_path / "two", {}, clusters, monitors, CHATOPS_DATABASE_URL=pg_url)
    engine = first.queue.engine
    try:
        def boards() -> list:
            with engine.connect() as conn:
                return list(conn.execute(select(deliveries.c.created_at).where(
                    deliveries.c.channel == channel).order_by(deliveries.c.created_at)))

        wait_until(lambda: len(boards()) >= 10, 60, "ten polls")
        # One post per poll instant, not one per dispatcher: polls fall on whole seconds (a late
        # one skips instants, never adds one), so ten posts span at least nine seconds, less
        # the first post's lateness (allowed: 2 s); both dispatchers posting would span ~4.5 s.
        posted = [r.created_at for r in boards()]
        assert len(posted) <= posted[-1] - posted[0] + 3, posted
        statuses = len(boards()) - 1  # every poll after the first posts the status ...
        with engine.connect() as conn:  # ... and edits the board ("every poll")
            revision = conn.execute(select(deliveries.c.revision).where(
                deliveries.c.channel == channel, deliveries.c.payload.like('%"live"%'))).scalar()
        assert revision >= statuses >= 5
        with engine.connect() as conn:
            holder = conn.execute(select(monitor_states.c.polled_by)).scalar()
        stopping, staying = ((first, second) if holder == first.dispatcher.worker
                             else (second, first))
        stopping.stop()
        wait_until(lambda: store.load(engine, "testcluster").polled_at > 0 and
                   conn_holder(engine) == staying.dispatcher.worker, 30, "the takeover")
        count = len(boards())
        wait_until(lambda: len(boards()) >= count + 2, 30, "polls by the other dispatcher")
    finally:
        first.stop()
        second.stop()
    with engine.connect() as conn:  # the first state was recorded once, by one of them
        assert conn.execute(select(monitor_transitions.c.id).where(
            monitor_transitions.c.from_state.is_(None))).scalars().all() == [1]


def conn_holder(engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(monitor_states.c.polled_by)).scalar()


def test_a_lease_is_held_until_it_expires_then_taken_over(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    migrate.upgrade(engine)
    assert store.take_lease(engine, "saga", "one", 100.0, ttl=20)
    assert not store.take_lease(engine, "saga", "two", 110.0, ttl=20)
    assert store.take_lease(engine, "saga", "one", 115.0, ttl=20)  # renewed until 135
    assert not store.take_lease(engine, "saga", "two", 130.0, ttl=20)
    assert store.take_lease(engine, "saga", "two", 136.0, ttl=20)  # "one" died: taken over
    assert not store.holds(engine, "saga", "one", 137.0)
    store.release_lease(engine, "saga", "two")
    assert store.take_lease(engine, "saga", "one", 138.0, ttl=20)


def test_an_unreadable_sinfo_answer_is_logged_raw_and_fails_the_poll(
        caplog: pytest.LogCaptureFixture) -> None:
    from chatops.config_loader import build_config
    from chatops.slurm.client import CommandResult
    from dispatcher.monitor import Monitors, Watch

    class Login:  # stands in for the SSH connection: a login node with a chatty shell
        def connection(self, name: str) -> Login:
            return self

        def run(self, argv: list[str], timeout: float) -> CommandResult:
            return CommandResult(0, "Welcome to saga!\n{\"nodes\": [", "")

    config = build_config({}, {"saga": {"host": "h", "user": "u", "key_file": "k",
                                        "known_hosts": "kh"}},
                          monitors={"saga": {"targets": ["slack:C1"]}})
    owner = Monitors(None, config, None, "me", Login)  # type: ignore[arg-type]
    poll = Watch(owner, config.monitors["saga"], config.clusters["saga"]).poll()
    assert poll.snapshot is None
    assert poll.error.startswith("sinfo answered something unreadable (unreadable JSON: ")
    assert "raw: Welcome to saga!\n{\"nodes\": [" in caplog.text


class Door:
    """A port that refuses connections until opened, then forwards them to the test sshd."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        self.port = self.sock.getsockname()[1]
        self.closed = threading.Event()

    def open(self) -> None:
        self.sock.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


@pytest.mark.slow
def test_a_cluster_back_from_an_outage_says_how_long_it_was_out(tmp_path: Path) -> None:
    env = cluster_env()
    door = Door((env["CHATOPS_TEST_SSH_HOST"], int(env["CHATOPS_TEST_SSH_PORT"])))
    known = tmp_path / "known_hosts"  # the test sshd's host key, under the door's port
    key_line = Path(env["CHATOPS_TEST_SSH_KNOWN_HOSTS"]).read_text().splitlines()[0]
    known.write_text(f"[127.0.0.1]:{door.port} {key_line.split(' ', 1)[1]}\n")
    channel = f"mon-{uuid.uuid4().hex[:8]}"
    harness = Harness(tmp_path / "home", {}, {"door": cluster_settings(
        env, port=door.port, known_hosts=str(known), connect_timeout=2)},
        monitors={"door": {"cadence": "1s", "timeout": 1, "targets": [f"console:{channel}"]}})
    console = Console(harness, channel)
    try:
        board = console.wait_for(r"door: OFFLINE for")
        assert "Error: cluster door unreachable: connection refused" in board
        door.open()
        back = console.wait_for(r"^(🟢|🟡) door is (ONLINE|DEGRADED)", timeout=90)
        assert re.match(r"🟢 door is ONLINE \(offline for \d+ s before\)|🟡 door is DEGRADED "
                        r"\(offline for \d+ s before\)\n• ", back), back
    finally:
        harness.stop()
        door.close()
    history = store.transitions(harness.queue.engine, "door", 0)
    assert [(t.from_state, t.to_state) for t in history if t.node is None][:2] == [
        (None, "offline"), ("offline", back.split()[3].lower())]


def rows_for(engine, channel: str) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(deliveries.c.id).where(deliveries.c.channel == channel))
                   .all())
