"""What the cluster monitor says: the change message, the status board, their payloads.

A message is a ``{"kind": "monitor", ...}`` payload on the outbound path: every platform shows
its ``text`` (markdown-ish, the partition table fenced), like a notice; the other keys say which
cluster, which role (``change`` or ``board``) and which state, for platforms that do more with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from chatops.cluster_status import DEGRADED, OFFLINE, ONLINE, Change, Snapshot, problem_line
from chatops.schedule_chat import span

EMOJI = {ONLINE: "🟢", DEGRADED: "🟡", OFFLINE: "🔴"}


class Clock:
    """Times as the monitor's readers see them, in its time zone."""

    def __init__(self, zone: str, now: float):
        self.zone = ZoneInfo(zone)
        self.now = now

    def __call__(self, ts: float) -> str:
        """``14:02``, or ``2026-11-30 14:02`` when not today."""
        moment = datetime.fromtimestamp(ts, self.zone)
        if moment.date() == datetime.fromtimestamp(self.now, self.zone).date():
            return moment.strftime("%H:%M")
        return moment.strftime("%Y-%m-%d %H:%M")

    def full(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def payload(cluster: str, role: str, state: str, text: str) -> dict[str, Any]:
    return {"kind": "monitor", "role": role, "cluster": cluster, "state": state, "text": text}


def change_text(cluster: str, old: Snapshot | None, old_since: float | None, new: Snapshot,
                since: float, change: Change, clock: Clock) -> str:
    """"🟡 saga is DEGRADED (online for 2 h 14 min before)" and one line per node changed."""
    head = f"{EMOJI[new.state]} {cluster}"
    if old is None:
        head += f" is {new.state.upper()} (first poll)"
    elif change.state_changed:
        head += f" is {new.state.upper()}"
        if old_since is not None:
            head += f" ({old.state} for {span(since - old_since)} before)"
    else:
        head += f": {new.state} for {span(clock.now - since)}"
    lines = [head]
    if new.state == OFFLINE:
        lines.append(f"Error: {new.error}")
    lines += [f"• {line}" for line in change.lines]
    return "\n".join(lines)


def board_text(cluster: str, snap: Snapshot, since: float, polled_at: float, clock: Clock,
               with_partitions: bool, last_error: str = "") -> str:
    """The status board: state and for how long, problem nodes, the partition table."""
    lines = [f"{EMOJI[snap.state]} {cluster}: {snap.state.upper()} for "
             f"{span(clock.now - since)} (since {clock(since)})"]
    if snap.state == OFFLINE:
        lines.append(f"Error: {snap.error}")
    elif snap.problems:
        lines.append("Problem nodes:")
        lines += [f"• {problem_line(p, clock)}" for p in snap.problems]
    if with_partitions and snap.partitions and snap.state != OFFLINE:
        lines.append("```\n" + partition_table(snap) + "\n```")
    footer = f"Last poll: {clock.full(polled_at)}"
    if last_error and snap.state != OFFLINE:
        footer += f" (failed: {last_error})"
    lines.append(footer)
    return "\n".join(lines)


def partition_table(snap: Snapshot) -> str:
    header = ("PARTITION", "IDLE", "ALLOC", "MIXED", "OTHER", "TOTAL", "CPUS(A/I/O/T)")
    rows = [header] + [
        (p.name or "-", str(p.idle), str(p.allocated), str(p.mixed), str(p.other), str(p.total),
         f"{p.cpus_allocated}/{p.cpus_idle}/{p.cpus_other}/{p.cpus_total}")
        for p in snap.partitions]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i in (0, 6) else cell.rjust(w)
                  for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
        for row in rows)
