"""GPU cards and their per-process use, from ``nvidia-smi`` or ``rocm-smi`` when installed.

A node without either program has no GPU fields (not an error). A program that fails is logged
and gives no GPU data for that pass. Memory is in KiB, clocks in MHz, power in W, as Sonar's
format says; values a card does not report (``[N/A]``, ``[Not Supported]``) are left out.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from typing import Any

log = logging.getLogger(__name__)

_NVIDIA_CARD = ("index", "uuid", "pci.bus_id", "name", "driver_version", "vbios_version",
                "memory.total", "power.limit", "power.max_limit", "power.min_limit",
                "clocks.max.sm", "clocks.max.memory")
_NVIDIA_STATE = ("index", "uuid", "fan.speed", "pstate", "memory.used", "utilization.gpu",
                 "utilization.memory", "temperature.gpu", "power.draw", "power.limit",
                 "clocks.sm", "clocks.mem", "compute_mode")


def _run(argv: list[str], timeout: float = 10.0) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s failed: %s", argv[0], exc)
        return None
    if proc.returncode != 0:
        log.warning("%s exited %s: %s", argv[0], proc.returncode, proc.stderr.strip()[:200])
        return None
    return proc.stdout


def _number(text: str) -> float | None:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return None  # [N/A], [Not Supported], empty


def _csv(text: str, names: tuple[str, ...]) -> list[dict[str, str]]:
    rows = []
    for line in text.splitlines():
        if line.strip():
            rows.append(dict(zip(names, (v.strip() for v in line.split(",")), strict=False)))
    return rows


class Gpus:
    """One vendor's tool; :func:`probe` picks the one installed."""

    def cards(self) -> list[dict[str, Any]]:
        """``SysinfoGpuCard`` records."""
        raise NotImplementedError

    def sample(self) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
        """``SampleGpu`` records, and ``SampleProcessGpu`` records by pid."""
        raise NotImplementedError


def probe() -> Gpus | None:
    for program, cls in (("nvidia-smi", NvidiaSmi), ("rocm-smi", RocmSmi)):
        path = shutil.which(program)
        if path:
            return cls(path)
    return None


class NvidiaSmi(Gpus):
    def __init__(self, program: str):
        self.program = program

    def _query(self, what: str, names: tuple[str, ...]) -> list[dict[str, str]]:
        out = _run([self.program, f"--query-{what}={','.join(names)}",
                    "--format=csv,noheader,nounits"])
        return _csv(out, names) if out else []

    def cards(self) -> list[dict[str, Any]]:
        cards = []
        for r in self._query("gpu", _NVIDIA_CARD):
            card: dict[str, Any] = {"index": int(_number(r.get("index", "")) or 0),
                                    "manufacturer": "NVIDIA"}
            for key, name in (("uuid", "uuid"), ("address", "pci.bus_id"), ("model", "name"),
                              ("driver", "driver_version"), ("firmware", "vbios_version")):
                if r.get(name) and not r[name].startswith("["):
                    card[key] = r[name]
            for key, name, scale in (("memory", "memory.total", 1024),
                                     ("power_limit", "power.limit", 1),
                                     ("max_power_limit", "power.max_limit", 1),
                                     ("min_power_limit", "power.min_limit", 1),
                                     ("max_ce_clock", "clocks.max.sm", 1),
                                     ("max_memory_clock", "clocks.max.memory", 1)):
                value = _number(r.get(name, ""))
                if value:
                    card[key] = int(value * scale)
            cards.append(card)
        return cards

    def sample(self) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
        states, index_of = [], {}
        for r in self._query("gpu", _NVIDIA_STATE):
            if not r.get("uuid"):
                continue
            index = int(_number(r.get("index", "")) or 0)
            index_of[r["uuid"]] = index
            state: dict[str, Any] = {"index": index, "uuid": r["uuid"]}
            pstate = r.get("pstate", "")
            if pstate.startswith("P") and pstate[1:].isdigit():
                state["performance_state"] = int(pstate[1:]) + 2  # ExtendedUint
            if r.get("compute_mode") and not r["compute_mode"].startswith("["):
                state["compute_mode"] = r["compute_mode"]
            for key, name, scale in (("fan", "fan.speed", 1), ("memory", "memory.used", 1024),
                                     ("ce_util", "utilization.gpu", 1),
                                     ("memory_util", "utilization.memory", 1),
                                     ("temperature", "temperature.gpu", 1),
                                     ("power", "power.draw", 1),
                                     ("power_limit", "power.limit", 1),
                                     ("ce_clock", "clocks.sm", 1),
                                     ("memory_clock", "clocks.mem", 1)):
                value = _number(r.get(name, ""))
                if value:
                    state[key] = round(value * scale)
            states.append(state)
        per_process: dict[int, list[dict[str, Any]]] = {}
        for r in self._query("compute-apps", ("pid", "gpu_uuid", "used_memory")):
            pid, uuid = _number(r.get("pid", "")), r.get("gpu_uuid", "")
            if not pid or uuid not in index_of:
                continue
            use: dict[str, Any] = {"index": index_of[uuid], "uuid": uuid}
            memory = _number(r.get("used_memory", ""))
            if memory:
                use["gpu_memory"] = int(memory * 1024)
            per_process.setdefault(int(pid), []).append(use)
        return states, per_process


class RocmSmi(Gpus):
    """AMD cards: ``rocm-smi --json`` (card state; per-process use is not read)."""

    def __init__(self, program: str):
        self.program = program

    def _cards_json(self) -> dict[str, dict[str, str]]:
        out = _run([self.program, "--showuniqueid", "--showproductname", "--showuse",
                    "--showmemuse", "--showtemp", "--showpower", "--json"])
        try:
            data = json.loads(out) if out else {}
        except ValueError:
            log.warning("rocm-smi printed something that is not JSON")
            return {}
        return {k: v for k, v in data.items() if k.startswith("card") and isinstance(v, dict)}

    @staticmethod
    def _find(values: dict[str, str], *words: str) -> str:
        for key, value in values.items():
            if all(w in key.lower() for w in words):
                return str(value)
        return ""

    def cards(self) -> list[dict[str, Any]]:
        cards = []
        for name, v in self._cards_json().items():
            card: dict[str, Any] = {"index": int(name[4:] or 0), "manufacturer": "AMD"}
            uuid, model = self._find(v, "unique id"), self._find(v, "card series")
            if uuid:
                card["uuid"] = uuid
            if model:
                card["model"] = model
            cards.append(card)
        return cards

    def sample(self) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
        states = []
        for name, v in self._cards_json().items():
            index = int(name[4:] or 0)
            state: dict[str, Any] = {"index": index,
                                     "uuid": self._find(v, "unique id") or f"amd-card{index}"}
            for key, words in (("ce_util", ("gpu use",)), ("memory_util", ("memory", "use")),
                               ("temperature", ("temperature",)), ("power", ("power",))):
                value = _number(self._find(v, *words))
                if value:
                    state[key] = round(value)
            states.append(state)
        return states, {}
