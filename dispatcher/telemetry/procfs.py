"""One process's figures for a sample pass, read from ``/proc/<pid>`` by hand.

psutil reads the same files (stat, status, statm), but a pass asks it for seven figures a
process, and each call goes through its oneshot caches, exception wrappers and named tuples:
measured with 500 processes, that machinery cost as much as the kernel producing the files
(docs/benchmarks.md, issue 16). Here each file is read once and parsed for the fields the pass
exports; every value is computed as psutil computes it (clock ticks, page size, the boot time
from ``/proc/stat``), so the records are the same. What is read only now and then (the I/O
counters, the environment, the full command line of a long name) is still psutil's.
"""

from __future__ import annotations

import os
from typing import NamedTuple

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
COMM_LENGTH = 15  # the kernel cuts a command name to this; psutil then looks at the cmdline


class Figures(NamedTuple):
    name: str  # the command (the kernel's, at most 15 characters)
    zombie: bool
    ppid: int
    uid: int  # real
    user_seconds: float
    system_seconds: float
    start_ticks: int  # clock ticks after boot: with the pid, the process's identity
    threads: int


def read(pid: int) -> Figures:
    """What ``stat`` and ``status`` say of ``pid``.

    Raises OSError (FileNotFoundError, ProcessLookupError, PermissionError) when the process
    is gone or hidden.
    """
    stat, status = _read(f"/proc/{pid}/stat"), _read(f"/proc/{pid}/status")
    # The name is between the first "(" and the last ")"; it may hold spaces and brackets.
    close = stat.rfind(b")")
    fields = stat[close + 2:].split()
    uid_at = status.find(b"\nUid:\t") + 6
    if uid_at < 6 or len(fields) < 20:
        raise ProcessLookupError(pid)  # not a process's files: never seen, never guessed
    return Figures(
        name=os.fsdecode(stat[stat.find(b"(") + 1:close]), zombie=fields[0] == b"Z",
        ppid=int(fields[1]), uid=int(status[uid_at:status.find(b"\t", uid_at)]),
        user_seconds=float(fields[11]) / CLOCK_TICKS,
        system_seconds=float(fields[12]) / CLOCK_TICKS, start_ticks=int(fields[19]),
        threads=int(fields[17]))


def memory(pid: int) -> tuple[int, int, int]:
    """Resident, shared and data (+ stack) bytes of ``pid``, from ``statm`` (OSError: gone)."""
    statm = _read(f"/proc/{pid}/statm").split()
    return int(statm[1]) * PAGE_SIZE, int(statm[2]) * PAGE_SIZE, int(statm[5]) * PAGE_SIZE


def _read(path: str) -> bytes:
    """A /proc file in one read: three system calls, where ``open().read()`` makes six (fstat,
    the isatty ioctl, a second read for the end)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _CHUNK)
        while len(data) % _CHUNK == 0 and data:  # (never for these files, which are short)
            more = os.read(fd, _CHUNK)
            if not more:
                break
            data += more
        return data
    finally:
        os.close(fd)


_CHUNK = 16384
