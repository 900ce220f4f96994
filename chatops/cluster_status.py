"""A cluster's state as the monitor sees it, from one ``sinfo``: online, degraded or offline.

**online**: it answers and no node has a problem. **degraded**: it answers, but some nodes are
down, drained or draining, failing or not responding (each with Slurm's reason and since when).
**offline**: the last ``offline_after`` polls failed (SSH or sinfo), with the error. A snapshot
travels as JSON (the database keeps the latest per cluster); ``changes`` says what differs
between two snapshots, in the words the monitor posts. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chatops.slurm.listing import Node

ONLINE, DEGRADED, OFFLINE = "online", "degraded", "offline"
_BAD_STATES = {"down", "error", "unknown", "future"}
_BAD_FLAGS = {"DRAIN", "FAIL", "NOT_RESPONDING"}


@dataclass(frozen=True)
class NodeProblem:
    name: str
    state: str  # as sinfo shows it: drained, draining, down*, fail, idle* ...
    reason: str = ""
    since: float | None = None  # when Slurm recorded the reason (UNIX seconds)


@dataclass(frozen=True)
class Partition:
    name: str
    idle: int = 0
    allocated: int = 0
    mixed: int = 0
    other: int = 0
    cpus_allocated: int = 0
    cpus_idle: int = 0
    cpus_other: int = 0

    @property
    def total(self) -> int:
        return self.idle + self.allocated + self.mixed + self.other

    @property
    def cpus_total(self) -> int:
        return self.cpus_allocated + self.cpus_idle + self.cpus_other


@dataclass(frozen=True)
class Snapshot:
    state: str  # online | degraded | offline
    problems: tuple[NodeProblem, ...] = ()
    partitions: tuple[Partition, ...] = ()
    node_states: dict[str, str] = field(default_factory=dict)  # every node: sinfo's state
    error: str = ""  # why it is offline

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        return cls(state=data["state"],
                   problems=tuple(NodeProblem(**p) for p in data.get("problems", ())),
                   partitions=tuple(Partition(**p) for p in data.get("partitions", ())),
                   node_states=dict(data.get("node_states", {})), error=data.get("error", ""))

    def problem(self, name: str) -> NodeProblem | None:
        return next((p for p in self.problems if p.name == name), None)

    def nodes_by_state(self) -> dict[str, int]:
        """How many nodes are in each state (sinfo's words, without ``*``/``~``)."""
        counts: dict[str, int] = {}
        for state in self.node_states.values():
            key = state.rstrip("*~$#!%@^-") or "unknown"
            counts[key] = counts.get(key, 0) + 1
        return counts


def is_problem(node: Node) -> bool:
    return node.state in _BAD_STATES or bool(_BAD_FLAGS & set(node.flags))


def snapshot(nodes: Sequence[Node]) -> Snapshot:
    """What one successful ``sinfo`` says about the cluster."""
    problems = tuple(sorted(
        (NodeProblem(n.name, n.display_state or n.state, n.reason,
                     n.reason_time.timestamp() if n.reason_time else None)
         for n in nodes if is_problem(n)), key=lambda p: p.name))
    return Snapshot(DEGRADED if problems else ONLINE, problems, partitions(nodes),
                    {n.name: n.display_state or n.state for n in nodes})


def offline(error: str) -> Snapshot:
    return Snapshot(OFFLINE, error=error)


def partitions(nodes: Iterable[Node]) -> tuple[Partition, ...]:
    """Per partition: nodes idle/allocated/mixed/other and CPUs allocated/idle/other."""
    table: dict[str, dict[str, int]] = {}
    for node in nodes:
        cpus, alloc = node.cpus or 0, min(node.alloc_cpus or 0, node.cpus or 0)
        usable = node.available or node.state == "allocated" and not is_problem(node)
        kind = node.state if usable and node.state in ("idle", "allocated", "mixed") else "other"
        for name in node.partitions or ("",):
            row = table.setdefault(name, dict.fromkeys(
                ("idle", "allocated", "mixed", "other", "cpus_allocated", "cpus_idle",
                 "cpus_other"), 0))
            row[kind] += 1
            row["cpus_allocated"] += alloc
            row["cpus_idle" if usable else "cpus_other"] += cpus - alloc
    return tuple(Partition(name, **row) for name, row in sorted(table.items()))


@dataclass(frozen=True)
class Change:
    """What differs between two snapshots: ``lines`` in the monitor's words."""

    state_changed: bool
    lines: tuple[str, ...]


def changes(old: Snapshot | None, new: Snapshot, when: Any) -> Change | None:
    """None when nothing a person would care about changed. ``when(ts)`` formats a time."""
    if old is None:
        return Change(True, tuple(problem_line(p, when) for p in new.problems))
    lines = []
    if new.state != OFFLINE:
        for problem in new.problems:
            before = old.problem(problem.name)
            if before is None or old.state == OFFLINE:
                lines.append(problem_line(problem, when))
            elif (before.state, before.reason) != (problem.state, problem.reason):
                lines.append(problem_line(problem, when, "now "))
        if old.state != OFFLINE:
            for before in old.problems:
                if new.problem(before.name) is None:
                    now = new.node_states.get(before.name)
                    lines.append(f"{before.name} back to {now}" if now
                                 else f"{before.name} is gone from sinfo")
    elif old.state == OFFLINE and old.error == new.error:
        return None
    state_changed = old.state != new.state
    if not lines and not state_changed:
        return None
    return Change(state_changed, tuple(lines))


def problem_line(problem: NodeProblem, when: Any, prefix: str = "") -> str:
    line = f"{problem.name} {prefix}{problem.state}"
    if problem.reason:
        line += f": '{problem.reason}'"
    if problem.since:
        line += f" (since {when(problem.since)})"
    return line
