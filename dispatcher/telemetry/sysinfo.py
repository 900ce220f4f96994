"""The ``sysinfo`` operation (role ``node``): what the node is.

CPU model, sockets, cores and threads, memory (psutil; the model and sockets from
``/proc/cpuinfo``, which psutil does not read), NUMA nodes and distances (``/sys``), GPU cards,
operating system, kernel and architecture (``uname``), and the output of the configured
topology commands, base64-encoded.
"""

from __future__ import annotations

import base64
import glob
import logging
import os
import subprocess
from typing import Any

import psutil

from dispatcher.telemetry.gpu import Gpus

log = logging.getLogger(__name__)


def _cpuinfo() -> tuple[str, int]:
    """(model name, number of sockets)."""
    model, sockets = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "physical id":
                    sockets.add(value.strip())
    except OSError:
        pass
    return model, max(1, len(sockets))


def _numa() -> tuple[int, list[list[int]]]:
    nodes = sorted(glob.glob("/sys/devices/system/node/node[0-9]*"),
                   key=lambda p: int(p.rsplit("node", 1)[1]))
    distances = []
    for node in nodes:
        try:
            with open(f"{node}/distance") as f:
                distances.append([int(x) for x in f.read().split()])
        except (OSError, ValueError):
            return len(nodes), []
    return len(nodes), distances


def _topology(command: str | None) -> str | None:
    """A topology command's output, base64; None (and a log line) if it cannot run."""
    if not command:
        return None
    try:
        out = subprocess.run(command.split(), capture_output=True, timeout=60, check=True,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("topology command %r failed: %s", command, exc)
        return None
    return base64.b64encode(out).decode()


def attributes(gpus: Gpus | None = None, topo_svg: str | None = None,
               topo_text: str | None = None) -> dict[str, Any]:
    """``SysinfoAttributes`` without time, cluster and node."""
    uname = os.uname()
    model, sockets = _cpuinfo()
    logical = psutil.cpu_count(logical=True) or 1
    physical = psutil.cpu_count(logical=False) or logical
    numa_nodes, distances = _numa()
    info: dict[str, Any] = {
        "os_name": uname.sysname, "os_release": uname.release, "architecture": uname.machine,
        "sockets": sockets, "cores_per_socket": max(1, physical // sockets),
        "threads_per_core": max(1, logical // physical), "cpu_model": model,
        "memory": psutil.virtual_memory().total // 1024, "numa_nodes": numa_nodes,
    }
    for key, command in (("topo_svg", topo_svg), ("topo_text", topo_text)):
        encoded = _topology(command)
        if encoded:
            info[key] = encoded
    cards = gpus.cards() if gpus else []
    if cards:
        info["cards"] = cards
    if distances:
        info["distances"] = distances
    return info
