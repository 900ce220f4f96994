"""What ``sinfo`` and ``squeue`` list, parsed: nodes and queued jobs (standard library only).

``sinfo --json`` (22.05's ``state`` + ``state_flags``, 23.02+'s state lists and
``{"set", "infinite", "number"}`` numbers) and ``squeue -o`` text; single values are read by
``chatops.slurm.parse``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from chatops.slurm.parse import (
    expand_nodelist,
    json_number,
    known,
    parse_datetime,
    parse_duration,
    parse_int,
    parse_state,
    parse_table,
)

# ------------------------------------------------------------------------------ sinfo
_BASE_STATES = {"IDLE", "DOWN", "ALLOCATED", "MIXED", "ERROR", "FUTURE", "UNKNOWN"}


@dataclass(frozen=True)
class Node:
    name: str
    state: str  # base state, lower case: idle, mixed, allocated, down, ...
    flags: tuple[str, ...] = ()  # DRAIN, NOT_RESPONDING, COMPLETING, ...
    display_state: str = ""  # as `sinfo -o %T` prints it: draining, drained, idle*, down* ...
    cpus: int | None = None
    alloc_cpus: int | None = None
    real_memory_mb: int | None = None
    alloc_memory_mb: int | None = None
    free_memory_mb: int | None = None
    cpu_load: float | None = None
    partitions: tuple[str, ...] = ()
    reason: str = ""
    reason_user: str = ""
    reason_time: datetime | None = None

    @property
    def available(self) -> bool:
        """The node can start new jobs."""
        bad = {"DRAIN", "FAIL", "NOT_RESPONDING", "POWERED_DOWN", "MAINTENANCE", "REBOOT_ISSUED"}
        return self.state in ("idle", "mixed") and not bad & set(self.flags)


def _display_state(base: str, flags: Sequence[str]) -> str:
    busy = base in ("allocated", "mixed") or "COMPLETING" in flags
    if "DRAIN" in flags:
        text = "draining" if busy else "drained"
    elif "FAIL" in flags:
        text = "failing" if busy else "fail"
    elif "COMPLETING" in flags and base != "down":
        text = "completing"
    else:
        text = base
    if "NOT_RESPONDING" in flags:
        return text + "*"
    return text + ("~" if "POWERED_DOWN" in flags else "")


def node_from_states(name: str, states: Sequence[str], partitions: Sequence[str] = ()) -> Node:
    """A node as Sonar's ``cluster`` envelope has it: a name and ``["IDLE", "DRAIN"]``."""
    words = [s.upper() for s in states]
    base = next((w for w in words if w in _BASE_STATES), "UNKNOWN").lower()
    flags = tuple(dict.fromkeys(w for w in words if w not in _BASE_STATES))
    return Node(name=name, state=base, flags=flags, display_state=_display_state(base, flags),
                partitions=tuple(partitions))


def parse_sinfo_json(text: str) -> list[Node]:
    """Nodes from ``sinfo --json`` (22.05: ``state`` + ``state_flags``; 23.02+: a state list)."""
    nodes = []
    for n in json.loads(text).get("nodes") or []:
        raw = n.get("state")
        raw = raw if isinstance(raw, list) else str(raw or "UNKNOWN").split("+")  # "IDLE+DRAIN"
        words = [str(w).upper() for w in raw]
        words += [str(f).upper() for f in n.get("state_flags") or []]
        base = next((w for w in words if w in _BASE_STATES), "UNKNOWN").lower()
        flags = tuple(dict.fromkeys(w for w in words if w not in _BASE_STATES))
        load = json_number(n.get("cpu_load"))
        changed = parse_int(n.get("reason_changed_at"))
        parts = n.get("partitions") or []
        nodes.append(Node(
            name=n.get("name") or n.get("hostname") or "",
            state=base, flags=flags, display_state=_display_state(base, flags),
            cpus=parse_int(n.get("cpus")), alloc_cpus=parse_int(n.get("alloc_cpus")),
            real_memory_mb=parse_int(n.get("real_memory")),
            alloc_memory_mb=parse_int(n.get("alloc_memory")),
            free_memory_mb=parse_int(n.get("free_mem", n.get("free_memory"))),
            cpu_load=load / 100 if isinstance(load, int | float) else None,
            partitions=tuple(parts.split(",") if isinstance(parts, str) else parts),
            reason=n.get("reason") or "", reason_user=n.get("reason_set_by_user") or "",
            reason_time=datetime.fromtimestamp(changed) if changed else None,
        ))
    return nodes


# ------------------------------------------------------------------------------ squeue
@dataclass(frozen=True)
class QueuedJob:
    job_id: str  # as users see it: "15", "7_1", "14_[1-3]" (a pending array)
    state: str
    name: str = ""
    user: str = ""
    raw_id: int | None = None
    array_job_id: int | None = None
    array_task: str | None = None  # "1", or "1-3" for a pending array
    partition: str = ""
    account: str = ""
    qos: str = ""
    elapsed: float | None = None
    time_limit: float | None = None  # seconds; math.inf when unlimited
    num_nodes: int | None = None
    num_cpus: int | None = None
    nodes: tuple[str, ...] = ()
    reason: str = ""
    submit_time: datetime | None = None
    start_time: datetime | None = None


SQUEUE_FORMAT = "%i|%A|%T|%u|%a|%P|%q|%M|%l|%D|%C|%N|%r|%V|%S|%j"


def parse_squeue(text: str, fmt: str = SQUEUE_FORMAT) -> list[QueuedJob]:
    """Jobs from ``squeue -h -o FMT`` (a header line, if present, is skipped).

    Understands %i %A %T %u %a %P %q %M %l %D %C %N %r %R %V %S %j in any order.
    """
    jobs = []
    for r in parse_table(text, [c.lstrip("%") for c in fmt.split("|")], free="j"):
        if r.get("i") in ("", "JOBID"):
            continue
        where = r.get("R", "")
        reason = r.get("r") or (where[1:-1] if where.startswith("(") else "")
        nodelist = r.get("N") or ("" if where.startswith("(") else where)
        array_id, array, task = r["i"].partition("_")
        jobs.append(QueuedJob(
            job_id=r["i"], state=parse_state(r.get("T"))[0], name=r.get("j", ""),
            user=r.get("u", ""), raw_id=parse_int(r.get("A")) or parse_int(r["i"]),
            array_job_id=parse_int(array_id) if array else None,
            array_task=task.strip("[]") if array else None,
            partition=r.get("P", ""), account=known(r.get("a")), qos=known(r.get("q")),
            elapsed=parse_duration(r.get("M")), time_limit=parse_duration(r.get("l")),
            num_nodes=parse_int(r.get("D")), num_cpus=parse_int(r.get("C")),
            nodes=tuple(expand_nodelist(nodelist)), reason="" if reason == "None" else reason,
            submit_time=parse_datetime(r.get("V")), start_time=parse_datetime(r.get("S")),
        ))
    return jobs
