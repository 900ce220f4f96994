"""Pure parsing of what Slurm prints (no I/O, standard library only).

Values: durations become seconds (``float``; ``math.inf`` for UNLIMITED, ``None`` when unknown),
sizes bytes (``int``), node lists lists of host names, TRES strings dicts. Parsers return ``None``
(or an empty container) for empty or malformed input instead of raising, because Slurm prints
placeholders (``Unknown``, ``N/A``, ``(null)``, ``INVALID``) in many columns.

``sinfo`` and ``squeue`` outputs are read in ``chatops.slurm.listing``; sacct and scontrol
records in ``chatops.slurm.client`` next to the code that uses them.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

# Placeholders Slurm prints instead of a value.
_UNKNOWN = {"", "unknown", "n/a", "none", "(null)", "invalid", "partition_limit", "null", "nan"}
_UNLIMITED = {"unlimited", "infinite"}

_SIZE_UNITS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}


def parse_duration(text: str | None) -> float | None:
    """Seconds from ``[D-]HH:MM:SS``, ``MM:SS[.mmm]``, ``M:SS``, ``D-HH[:MM]`` or minutes.

    ``UNLIMITED``/``INFINITE`` give ``math.inf``; ``Partition_Limit``, ``INVALID``, ``N/A`` None.
    """
    if text is None:
        return None
    s = text.strip()
    if s.lower() in _UNLIMITED:
        return math.inf
    if s.lower() in _UNKNOWN:
        return None
    days = 0
    if "-" in s:
        d, _, s = s.partition("-")
        if not d.isdigit():
            return None
        days = int(d)
        parts = s.split(":")
        if len(parts) > 3:
            return None
        parts += ["0"] * (3 - len(parts))  # D-HH, D-HH:MM, D-HH:MM:SS
    else:
        parts = s.split(":")
        if len(parts) == 1:  # minutes
            parts = ["0", parts[0], "0"]
        elif len(parts) == 2:  # MM:SS[.mmm]
            parts = ["0", *parts]
        elif len(parts) != 3:
            return None
    try:
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    except ValueError:
        return None
    if hours < 0 or minutes < 0 or seconds < 0:
        return None
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def parse_size(text: str | None, default_unit: str = "M") -> int | None:
    """Bytes from ``256M``, ``3036K``, ``1.5G``, ``0`` (binary units; bare numbers in
    ``default_unit``). A per-node/per-CPU suffix (``50Mn``, ``4Gc``) is ignored here."""
    if text is None:
        return None
    s = text.strip()
    if s.lower() in _UNKNOWN:
        return None
    if len(s) > 1 and s[-1] in ("n", "c"):
        s = s[:-1]
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGTPE]?)(?:i?B)?", s, re.IGNORECASE)
    if not m:
        return None
    unit = m.group(2).upper() or default_unit.upper()
    return round(float(m.group(1)) * 1024 ** _SIZE_UNITS[unit])


def parse_mem_request(text: str | None) -> tuple[int | None, str | None]:
    """``(bytes, per)`` from sacct's ReqMem: ``per`` is ``"node"`` for ``4Gn``, ``"cpu"`` for
    ``50Mc`` (before 21.08), None for ``256M`` (21.08+: the job's total, its TRES ``mem``)."""
    if not text:
        return None, None
    s = text.strip()
    per = {"n": "node", "c": "cpu"}.get(s[-1]) if len(s) > 1 else None
    return parse_size(s), per


def parse_tres(text: str | None) -> dict[str, int | float]:
    """``cpu=1,mem=256M,node=1`` -> ``{"cpu": 1, "mem": 268435456, "node": 1}``.

    Sizes (and bare ``mem``/``vmem`` numbers, in MiB) become bytes, the rest int or float.
    """
    result: dict[str, int | float] = {}
    if not text or text.strip().lower() in _UNKNOWN:
        return result
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key:
            continue
        value = value.strip()
        if key in ("mem", "vmem") or re.fullmatch(r"[\d.]+[KMGTPE]", value, re.IGNORECASE):
            size = parse_size(value, default_unit="M")
            if size is not None:
                result[key] = size
            continue
        try:
            result[key] = int(value)
        except ValueError:
            try:
                result[key] = float(value)
            except ValueError:
                continue
    return result


def expand_nodelist(text: str | None) -> list[str]:
    """``node[01-04,07]`` -> node01..node04, node07; ``a[1-2],b3`` -> a1, a2, b3; ``vm`` -> vm.

    Zero padding (the lower bound's width) is kept; ``r[1-2]n[1-2]`` expands as a product.
    """
    if not text:
        return []
    s = text.strip()
    if s.lower() in _UNKNOWN or s.lower().startswith("none"):
        return []
    names: list[str] = []
    for item in _split_top_level(s):
        names.extend(_expand_one(item))
    return names


def _split_top_level(s: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(s[start:i])
            start = i + 1
    items.append(s[start:])
    return [item.strip() for item in items if item.strip()]


def _expand_one(name: str) -> list[str]:
    m = re.search(r"\[([^\]]*)\]", name)
    if not m:
        return [name]
    prefix, suffix = name[: m.start()], name[m.end() :]
    values: list[str] = []
    for part in m.group(1).split(","):
        lo, sep, hi = part.strip().partition("-")
        if not sep:
            values.append(lo)
        elif lo.isdigit() and hi.isdigit():
            values.extend(str(i).zfill(len(lo)) for i in range(int(lo), int(hi) + 1))
        else:
            values.append(part.strip())
    return [expanded for v in values for expanded in _expand_one(prefix + v + suffix)]


def parse_exit_code(text: str | None) -> tuple[int | None, int | None]:
    """``3:0`` -> ``(3, 0)`` (exit status, signal); ``0:15`` -> ``(0, 15)``; bad -> (None, None)."""
    if not text:
        return None, None
    status, _, signal = text.strip().partition(":")
    try:
        return int(status), int(signal or 0)
    except ValueError:
        return None, None


def parse_state(text: str | None) -> tuple[str, int | None]:
    """``CANCELLED by 0`` -> ``("CANCELLED", 0)``; ``COMPLETED`` -> ``("COMPLETED", None)``."""
    if not text:
        return "", None
    words = text.strip().split()
    state = words[0].rstrip("+").upper()
    if len(words) >= 3 and words[1] == "by":
        try:
            return state, int(words[2])
        except ValueError:
            return state, None
    return state, None


def parse_datetime(text: str | None) -> datetime | None:
    """``2026-11-24T00:08:13`` -> naive local ``datetime``; ``Unknown``/``None``/``N/A`` -> None."""
    if not text or text.strip().lower() in _UNKNOWN:
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def parse_int(text: Any) -> int | None:
    """An ``int`` from text or JSON, or None (``N/A``, ``(null)``, empty)."""
    value = json_number(text)
    if value is None or value == math.inf:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def json_number(value: Any) -> Any:
    """Unwrap 23.02+ ``{"set": true, "infinite": false, "number": 5}`` -> 5 (unset: None,
    infinite: ``math.inf``); plain values (22.05) are returned unchanged."""
    if isinstance(value, dict) and "number" in value:
        if value.get("infinite"):
            return math.inf
        if not value.get("set", True):
            return None
        return value["number"]
    return value


def parse_keyvalues(text: str) -> dict[str, str]:
    """``JobId=9 JobName=ok job UserId=root(0) ...`` -> dict (``scontrol show``).

    A key is a word after whitespace followed by ``=``; a value runs to the next key, so values
    with spaces (``Reason=maint drain``) or ``=`` (``TRES=cpu=1,mem=256M``) survive.
    """
    matches = list(re.finditer(r"(?:^|(?<=\s))([A-Za-z][A-Za-z0-9_/:]*)=", text))
    fields: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        fields.setdefault(m.group(1), text[m.end() : end].strip())
    return fields


def split_records(text: str, first_key: str) -> list[str]:
    """Split ``scontrol show`` output (one-line ``-o`` or multi-line) into one string per record."""
    records: list[str] = []
    for line in text.splitlines():
        if line.startswith(first_key + "="):
            records.append(line)
        elif records and line.strip():
            records[-1] += " " + line.strip()
    return records


def parse_table(
    text: str, columns: list[str] | None = None, free: str | None = None
) -> list[dict[str, str]]:
    """Rows of ``|``-separated output as dicts; without ``columns`` the first line is the header.

    ``free`` names the one column that may itself contain ``|`` (a job name): extras join it.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if columns is None:
        if not lines:
            return []
        columns, lines = lines[0].split("|"), lines[1:]
    n = len(columns)
    k = columns.index(free) if free in columns else n - 1
    rows = []
    for line in lines:
        parts = line.split("|")
        extra = len(parts) - n
        if extra > 0:
            parts = parts[:k] + ["|".join(parts[k : k + extra + 1])] + parts[k + extra + 1 :]
        elif extra < 0:
            parts += [""] * -extra
        rows.append(dict(zip(columns, parts, strict=True)))
    return rows


def known(value: str | None) -> str:
    """The text, or "" for Slurm's placeholders ``(null)`` and ``N/A``."""
    return "" if value is None or value in ("(null)", "N/A") else value
