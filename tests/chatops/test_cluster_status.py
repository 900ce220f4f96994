"""What the cluster monitor makes of sinfo: states, problem nodes, the partition table, and the
words of its change messages and status board."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from chatops.cluster_status import Snapshot, changes, offline, snapshot
from chatops.config_loader import build_config
from chatops.monitor_texts import Clock, board_text, change_text
from chatops.slurm.listing import Node, parse_sinfo_json
from dispatcher.monitor import Poll, advance

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurm"
T = datetime(2026, 11, 30, 16, 0, tzinfo=UTC).timestamp()  # 17:00 in Oslo


def nodes(name: str) -> list[Node]:
    return parse_sinfo_json((FIXTURES / name).read_text())


def node(name: str, state: str, flags: tuple[str, ...] = (), reason: str = "",
         since: float | None = None, cpus: int = 8, alloc: int = 0,
         partitions: tuple[str, ...] = ("batch",)) -> Node:
    from chatops.slurm.listing import _display_state

    return Node(name, state, flags, _display_state(state, flags), cpus=cpus, alloc_cpus=alloc,
                partitions=partitions, reason=reason,
                reason_time=datetime.fromtimestamp(since) if since else None)


def spec(**extra):
    clusters = {"saga": {"host": "h", "user": "u", "key_file": "k", "known_hosts": "kh"}}
    return build_config({}, clusters, monitors={"saga": {
        "targets": ["slack:C1"], "timezone": "Europe/Oslo", **extra}}).monitors["saga"]


def test_states_come_from_the_nodes_slurm_reports() -> None:
    assert snapshot(nodes("sinfo_0_idle.json")).state == "online"
    for name, state, reason in (("sinfo_1_down.json", "down", "test outage"),
                                ("sinfo_3_draining.json", "draining", "maint drain"),
                                ("sinfo_4_drained.json", "drained", "maint drain"),
                                ("sinfo_8_slurmd_killed_manualrun.json", "down*",
                                 "Not responding")):
        snap = snapshot(nodes(name))
        assert snap.state == "degraded", name
        [problem] = snap.problems
        assert (problem.name, problem.state, problem.reason) == ("vm", state, reason)
        assert problem.since is not None and problem.since > 1.7e9


def test_the_partition_table_counts_nodes_and_cpus() -> None:
    snap = snapshot([node("n1", "idle"), node("n2", "mixed", alloc=3),
                     node("n3", "allocated", alloc=8), node("n4", "idle", ("DRAIN",)),
                     node("g1", "down", partitions=("gpu", "batch"))])
    batch, gpu = snap.partitions
    assert (batch.name, batch.idle, batch.mixed, batch.allocated, batch.other, batch.total) == (
        "batch", 1, 1, 1, 2, 5)
    assert (batch.cpus_allocated, batch.cpus_idle, batch.cpus_other, batch.cpus_total) == (
        11, 13, 16, 40)
    assert (gpu.other, gpu.total) == (1, 1)
    assert snap.nodes_by_state() == {"idle": 1, "mixed": 1, "allocated": 1, "drained": 1,
                                     "down": 1}


def test_a_change_message_says_what_changed_and_for_how_long() -> None:
    degraded_at = T - (2 * 3600 + 14 * 60)
    old = snapshot([node("node03", "idle"), node("node05", "down", reason="psu",
                                                 since=degraded_at)])
    new = snapshot([node("node03", "idle", ("DRAIN",), "disk replace", since=T - 120),
                    node("node05", "idle")])
    clock = Clock("Europe/Oslo", T)
    change = changes(old, new, clock)
    assert change is not None and not change.state_changed
    assert change_text("saga", old, degraded_at, new, degraded_at, change, clock) == (
        "🟡 saga: degraded for 2 h 14 min\n"
        "• node03 drained: 'disk replace' (since 16:58)\n"
        "• node05 back to idle")
    back = snapshot([node("node03", "idle"), node("node05", "idle")])
    change = changes(new, back, clock)
    assert change_text("saga", new, degraded_at, back, T, change, clock) == (
        "🟢 saga is ONLINE (degraded for 2 h 14 min before)\n"
        "• node03 back to idle")
    assert changes(back, back, clock) is None
    reason = snapshot([node("node03", "idle", ("DRAIN",), "disk replaced, testing",
                            since=T - 60), node("node05", "idle")])
    assert changes(new, reason, clock).lines == (
        "node03 now drained: 'disk replaced, testing' (since 16:59)",)


def test_offline_after_the_configured_failed_polls_then_back_with_the_outage() -> None:
    monitor = spec(offline_after=2)
    ok = Poll(snapshot([node("n1", "idle")]))
    failed = Poll(None, "cluster saga unreachable: connection refused")
    first = advance(None, ok, monitor, T)
    assert first.change.state_changed and first.state.snapshot.state == "online"
    one = advance(first.state, failed, monitor, T + 60)
    assert one.change is None and one.state.snapshot.state == "online"
    assert (one.state.failures, one.state.last_error) == (1, failed.error)
    two = advance(one.state, failed, monitor, T + 120)  # offline since the first failure
    assert two.state.snapshot.state == "offline" and two.state.since == T + 60
    assert two.transitions == [dict(node=None, from_state="online", to_state="offline",
                                    reason=failed.error, at=T + 60)]
    clock = Clock("Europe/Oslo", T + 120)
    assert change_text("saga", one.state.snapshot, one.state.since, two.state.snapshot,
                       two.state.since, two.change, clock) == (
        "🔴 saga is OFFLINE (online for 1 min before)\n"
        "Error: cluster saga unreachable: connection refused")
    three = advance(two.state, failed, monitor, T + 180)
    assert three.change is None and three.state.failures == 3
    back = advance(three.state, ok, monitor, T + 3600)
    assert back.state.snapshot.state == "online" and back.state.failures == 0
    assert change_text("saga", three.state.snapshot, three.state.since, back.state.snapshot,
                       back.state.since, back.change, Clock("UTC", T + 3600)) == (
        "🟢 saga is ONLINE (offline for 59 min before)")
    assert advance(None, failed, monitor, T) is None  # nothing known yet: one failure
    assert advance(None, failed, monitor, T, failures_before=1).state.snapshot.state == "offline"


def test_node_transitions_are_recorded_with_reasons() -> None:
    monitor = spec()
    old = advance(None, Poll(snapshot([node("n1", "idle"), node("n2", "idle")])), monitor, T)
    new = advance(old.state, Poll(snapshot([node("n1", "idle", ("DRAIN",), "disk replace",
                                                 since=T), node("n2", "idle")])), monitor,
                  T + 60)
    assert new.transitions == [
        dict(node=None, from_state="online", to_state="degraded", reason="n1 drained",
             at=T + 60),
        dict(node="n1", from_state="ok", to_state="drained", reason="disk replace", at=T + 60)]
    back = advance(new.state, Poll(snapshot([node("n1", "idle"), node("n2", "idle")])),
                   monitor, T + 120)
    assert back.transitions[1] == dict(node="n1", from_state="drained", to_state="ok",
                                       reason="idle", at=T + 120)


def test_the_board_shows_state_problems_and_partitions() -> None:
    snap = snapshot([node("n1", "idle"), node("n2", "down", reason="psu", since=T - 600)])
    clock = Clock("Europe/Oslo", T)
    assert board_text("saga", snap, T - 600, T, clock, True) == (
        "🟡 saga: DEGRADED for 10 min (since 16:50)\n"
        "Problem nodes:\n"
        "• n2 down: 'psu' (since 16:50)\n"
        "```\n"
        "PARTITION  IDLE  ALLOC  MIXED  OTHER  TOTAL  CPUS(A/I/O/T)\n"
        "batch         1      0      0      1      2  0/8/8/16\n"
        "```\n"
        "Last poll: 2026-11-30 17:00:00 CET")
    assert board_text("saga", offline("connection refused"), T - 60, T, clock, True) == (
        "🔴 saga: OFFLINE for 1 min (since 16:59)\n"
        "Error: connection refused\n"
        "Last poll: 2026-11-30 17:00:00 CET")


def test_a_snapshot_survives_json() -> None:
    snap = snapshot(nodes("sinfo_4_drained.json"))
    assert Snapshot.from_json(snap.to_json()) == snap
