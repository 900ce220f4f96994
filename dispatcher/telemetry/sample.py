"""The ``sample`` operation (role ``node``): the node's processes grouped into jobs, with psutil.

For each process: resident memory (private: RSS less shared pages) and virtual data+stack memory
in KiB, threads beyond the first, the command, pid and parent, the CPU time, its average over the
process's life and its utilisation since the previous pass, bytes read and written (read again
only from processes that used CPU since the previous pass: reading and writing are system calls,
which take CPU), and GPU use where ``nvidia-smi``/``rocm-smi`` exist. Processes belong to the
Slurm job named in their cgroup (``/job_<id>/``) or environment (``SLURM_JOB_ID``); others to
their process group, with a non-zero ``epoch`` (the node's boot time) as Sonar's format asks.
Node-wide: boot time, per-CPU busy seconds, used memory, load averages and scheduling entities,
when ``load`` is on.

The pass reads what it needs for the filters first (owner, command, parent: ``stat`` and
``status``) and the memory (``statm``) only for processes kept, by hand (:mod:`.procfs`: psutil's
per-call machinery cost as much as the kernel's work); a process's job is looked up once in its
life.
"""

from __future__ import annotations

import os
import pwd
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import psutil

from dispatcher.telemetry import procfs
from dispatcher.telemetry.config import SampleSettings
from dispatcher.telemetry.envelope import EPOCH_TIME_BASE, timestamp
from dispatcher.telemetry.gpu import Gpus

_JOB_IN_CGROUP = re.compile(rb"/job_(\d+)(?:/|$)", re.M)
SYSTEM_UID_LIMIT = 1000  # Sonar's "system job": a process of a uid below this


@dataclass
class Proc:
    pid: int
    ppid: int
    uid: int
    cmd: str
    process: psutil.Process
    seen: procfs.Figures
    in_container: bool = False
    fields: dict[str, Any] = field(default_factory=dict)
    job: int = 0
    slurm: bool = False


class Sampler:
    """One node's sampler; keeps what it needs between passes (CPU times, jobs of processes)."""

    def __init__(self, settings: SampleSettings, gpus: Gpus | None = None):
        self.settings = settings
        self.gpus = gpus
        self.boot = psutil.boot_time()
        self.epoch = max(1, int(self.boot) - EPOCH_TIME_BASE)
        self._cpu: dict[int, tuple[float, float, float]] = {}  # pid -> (created, cpu s, at)
        self._jobs: dict[tuple[int, float], tuple[int, bool]] = {}  # (pid, created) -> job
        self._io: dict[int, tuple[int, int]] = {}  # pid -> KiB read, written at the last read
        self._users: dict[int, str] = {}
        self._pid_max = _read_int("/proc/sys/kernel/pid_max", 4194304)

    # -------------------------------------------------------------------------- the pass
    def attributes(self, now: float) -> dict[str, Any]:
        """``node``-less sample attributes: ``system`` (when ``load``) and ``jobs``."""
        procs = self._scan(now)
        attributes: dict[str, Any] = {}
        cards, per_process = self.gpus.sample() if self.gpus else ([], {})
        if self.settings.load:
            attributes["system"] = self._system(cards)
        for pid, gpu_use in per_process.items():
            if pid in procs:
                procs[pid].fields["gpus"] = gpu_use
        kept = list(procs.values())
        if self.settings.rollup:
            kept = _rollup(kept, self._pid_max)
        if self.settings.min_cpu_time:
            kept = [p for p in kept if p.fields.get("cpu_time", 0)
                    >= self.settings.min_cpu_time.seconds]
        attributes["jobs"] = self._jobs_of(kept)
        return attributes

    def _scan(self, now: float) -> dict[int, Proc]:
        s = self.settings
        excluded_users, excluded_commands = set(s.exclude_users), tuple(s.exclude_commands)
        procs: dict[int, Proc] = {}
        system: dict[int, Proc] = {}  # left out unless they run in a container
        everyone: dict[int, tuple[int, str]] = {}  # pid -> (ppid, name), for containers
        for process in psutil.process_iter():
            try:
                seen = procfs.read(process.pid)
                name = (seen.name if len(seen.name) < procfs.COMM_LENGTH
                        else process.name())  # psutil's rule: the cmdline's fuller name
                everyone[process.pid] = (seen.ppid, name)
                user = self._user(seen.uid)
                if user in excluded_users or (excluded_commands
                                              and name.startswith(excluded_commands)):
                    continue
                proc = Proc(process.pid, seen.ppid, seen.uid, name, process, seen)
                if s.exclude_system_jobs and seen.uid < SYSTEM_UID_LIMIT:
                    system[proc.pid] = proc
                    continue
                self._measure(proc, now)
            except (OSError, psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            procs[proc.pid] = proc
        _mark_containers(procs, everyone)
        _mark_containers(system, everyone)
        for proc in system.values():
            if proc.in_container:
                try:
                    self._measure(proc, now)
                except (OSError, psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                procs[proc.pid] = proc
        live = set(everyone)
        self._cpu = {pid: v for pid, v in self._cpu.items() if pid in live}
        self._io = {pid: v for pid, v in self._io.items() if pid in live}
        self._jobs = {k: v for k, v in self._jobs.items() if k[0] in live}
        for proc in procs.values():
            proc.job, proc.slurm = self._job_of(proc)
        return procs

    def _measure(self, proc: Proc, now: float) -> None:
        """The figures of one process (``stat`` and ``status`` read already)."""
        p, f, seen = proc.process, proc.fields, proc.seen
        if seen.zombie:
            proc.cmd += " <defunct>"
        created = seen.start_ticks / procfs.CLOCK_TICKS + self.boot  # as psutil's create_time
        cpu = seen.user_seconds + seen.system_seconds
        rss, shared, data = procfs.memory(proc.pid)
        f["resident_memory"] = max(0, rss - shared) // 1024
        f["virtual_memory"] = data // 1024
        threads = seen.threads - 1
        if threads > 0:
            f["num_threads"] = threads
        lifetime = max(now - created, 1e-3)
        f["cpu_avg"] = round(100 * cpu / lifetime, 3)
        previous = self._cpu.get(proc.pid)
        if previous and previous[0] == created and now > previous[2]:
            f["cpu_util"] = round(100 * max(0.0, cpu - previous[1]) / (now - previous[2]), 3)
        else:
            f["cpu_util"] = f["cpu_avg"]  # first sight: the best estimate there is
        self._cpu[proc.pid] = (created, cpu, now)
        f["cpu_time"] = int(cpu)
        f["_created"] = created
        if previous and previous[0] == created and previous[1] == cpu and proc.pid in self._io:
            f["data_read"], f["data_written"] = self._io[proc.pid]  # no CPU, no syscalls
            return
        try:
            io = p.io_counters()
        except (psutil.AccessDenied, AttributeError):
            return
        f["data_read"] = -(-io.read_chars // 1024)
        f["data_written"] = -(-io.write_chars // 1024)
        self._io[proc.pid] = (f["data_read"], f["data_written"])

    def _job_of(self, proc: Proc) -> tuple[int, bool]:
        key = (proc.pid, proc.fields.get("_created", 0.0))
        if key not in self._jobs:
            self._jobs[key] = self._find_job(proc)
        return self._jobs[key]

    def _find_job(self, proc: Proc) -> tuple[int, bool]:
        if not self.settings.batchless:
            try:
                with open(f"/proc/{proc.pid}/cgroup", "rb") as f:
                    m = _JOB_IN_CGROUP.search(f.read())
                if m:
                    return int(m.group(1)), True
            except OSError:
                pass
            try:
                job = proc.process.environ().get("SLURM_JOB_ID", "")
                if job.isdigit():
                    return int(job), True
            except (psutil.Error, OSError):
                pass
        try:
            return os.getpgid(proc.pid), False
        except OSError:
            return 0, False

    def _user(self, uid: int) -> str:
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = f"_user_{uid}"
        return self._users[uid]

    # -------------------------------------------------------------------------- node and jobs
    def _system(self, cards: list[dict[str, Any]]) -> dict[str, Any]:
        vm = psutil.virtual_memory()
        load1, load5, load15 = os.getloadavg()
        runnable, existing = _entities()
        system: dict[str, Any] = {
            "boot": timestamp(self.boot),
            "cpus": [int(c.user + c.nice + c.system + c.irq + c.softirq + c.steal)
                     for c in psutil.cpu_times(percpu=True)],
        }
        if cards:
            system["gpus"] = cards
        disks = _disks()
        if disks:
            system["disks"] = disks
        system.update(used_memory=(vm.total - vm.available) // 1024, load1=load1, load5=load5,
                      load15=load15, runnable_entities=runnable, existing_entities=existing)
        return system

    def _jobs_of(self, procs: list[Proc]) -> list[dict[str, Any]]:
        groups: dict[tuple[str, int, bool], list[Proc]] = defaultdict(list)
        alone = []
        for proc in procs:
            if proc.job == 0:
                alone.append([proc])
            else:
                groups[(self._user(proc.uid), proc.job, proc.slurm)].append(proc)
        jobs = []
        for members in [*alone, *groups.values()]:
            first = members[0]
            job: dict[str, Any] = {"job": first.job, "user": self._user(first.uid)}
            if not first.slurm:
                job["epoch"] = self.epoch
            job["processes"] = [_process_record(p) for p in members]
            jobs.append(job)
        return jobs


def _process_record(proc: Proc) -> dict[str, Any]:
    """A ``SampleProcess``: zero values are left out, as Sonar does."""
    record: dict[str, Any] = {"cmd": proc.cmd, "pid": proc.pid}
    if proc.ppid:
        record["ppid"] = proc.ppid
    if proc.in_container:
        record["in_container"] = True
    for key, value in proc.fields.items():
        if value and not key.startswith("_"):
            record[key] = value
    return record


def _mark_containers(procs: dict[int, Proc], everyone: dict[int, tuple[int, str]]) -> None:
    """Descendants of a ``containerd*`` process whose parent is init run in a container."""
    roots = {pid for pid, (ppid, name) in everyone.items()
             if ppid == 1 and name.startswith("containerd")}
    if not roots:
        return
    for proc in procs.values():
        pid, seen = proc.ppid, 0
        while pid in everyone and pid not in roots and seen < 1000:
            pid, seen = everyone[pid][0], seen + 1
        proc.in_container = pid in roots


def _rollup(procs: list[Proc], pid_max: int) -> list[Proc]:
    """Sonar's roll-up: leaf processes of one Slurm job with the same command and parent become
    one record (``rolledup`` = how many more), with a stable synthetic pid above pid_max."""
    parents = {p.ppid for p in procs}
    merged: dict[tuple[int, int, str], Proc] = {}
    out = []
    for proc in procs:
        if not proc.slurm or proc.pid in parents:
            out.append(proc)
            continue
        key = (proc.job, proc.ppid, proc.cmd)
        first = merged.get(key)
        if first is None:
            merged[key] = proc
            out.append(proc)
            continue
        if "rolledup" not in first.fields:
            first.pid = pid_max + 1 + zlib.crc32(repr(key).encode()) % (1 << 30)
        first.fields["rolledup"] = first.fields.get("rolledup", 0) + 1
        for name in ("resident_memory", "virtual_memory", "num_threads", "cpu_avg",
                     "cpu_util", "cpu_time", "data_read", "data_written"):
            if name in proc.fields:
                total = first.fields.get(name, 0) + proc.fields[name]
                first.fields[name] = round(total, 3) if isinstance(total, float) else total
    return out


def _entities() -> tuple[int, int]:
    """Runnable and existing scheduling entities (``/proc/loadavg``; psutil has no call)."""
    try:
        with open("/proc/loadavg") as f:
            runnable, _, existing = f.read().split()[3].partition("/")
        return int(runnable), int(existing)
    except (OSError, ValueError, IndexError):
        return 0, 0


def _disks() -> list[dict[str, Any]]:
    """``/proc/diskstats`` as Sonar sends it (psutil has no device numbers or raw fields)."""
    disks = []
    try:
        with open("/proc/diskstats") as f:
            lines = f.read().splitlines()
    except OSError:
        return disks
    for line in lines:
        parts = line.split()
        if len(parts) < 4 or parts[2].startswith(("loop", "ram")):
            continue
        try:
            disks.append({"name": parts[2], "major": int(parts[0]), "minor": int(parts[1]),
                          "stats": [int(x) for x in parts[3:]]})
        except ValueError:
            continue
    return disks


def _read_int(path: str, default: int) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return default
