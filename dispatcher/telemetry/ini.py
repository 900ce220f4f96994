"""The lines and values of Sonar's daemon ini syntax, read strictly.

Syntax (Sonar's ``doc/HOWTO-DAEMON.md``): ``[section]`` headers, ``name = value`` settings with
names matching ``[a-zA-Z_][-a-zA-Z_0-9]*``, values optionally quoted with ``'``, ``"`` or a
backquote (an empty value must be quoted), blank lines and ``#`` comments. Value kinds: booleans
``true``/``false``, durations ``Nh``/``Nm``/``Ns`` (one unit, nonzero), cadences (durations that
divide the minute, hour or day), volumes (bytes, or ``NK``/``NM``/``NG``), counts, and
comma-separated lists. Each parser raises ValueError with a message meant for the person who
wrote the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

NAME = re.compile(r"[a-zA-Z_][-a-zA-Z_0-9]*")
_DURATION = re.compile(r"(\d+)([hHmMsS])")
_VOLUME = re.compile(r"(\d+)([KMG]?)")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


@dataclass(frozen=True)
class Line:
    """One meaningful line: a section header (``key`` None) or a setting."""

    number: int
    section: str
    key: str | None = None
    value: str = ""


def read_lines(text: str) -> Iterator[Line | tuple[int, str]]:
    """Headers and settings in file order; a ``(line number, message)`` for each bad line."""
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            if not line.endswith("]") or not NAME.fullmatch(line[1:-1]):
                yield number, f"not a section header: {line!r} (write [name])"
                section = "?"
                continue
            section = line[1:-1]
            yield Line(number, section)
            continue
        name, sep, value = line.partition("=")
        name, value = name.strip(" \t"), value.strip(" \t")
        if not sep:
            yield number, f"not a setting: {line!r} (write name = value)"
        elif not NAME.fullmatch(name):
            yield number, (f"{name!r} is not a valid name (letters, digits, '-' and '_', "
                           "not starting with a digit or '-')")
        elif not value:
            yield number, f"{name}: an empty value must be quoted ({name} = \"\")"
        elif value[0] in "'\"`" and (len(value) < 2 or value[-1] != value[0]):
            yield number, f"{name}: the quote {value[0]} is not closed"
        else:
            if value[0] in "'\"`":
                value = value[1:-1]
            yield Line(number, section, name, value)


# ------------------------------------------------------------------------------ value kinds
@dataclass(frozen=True)
class Duration:
    seconds: int
    text: str  # as written: "5m"

    def __str__(self) -> str:
        return self.text


def boolean(value: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise ValueError(f"{value!r} is not a boolean (write true or false)")


def duration(value: str) -> Duration:
    m = _DURATION.fullmatch(value)
    if not m:
        raise ValueError(f"{value!r} is not a duration (write a whole number with one unit: "
                         "30s, 5m, 1h)")
    count = int(m.group(1))
    if count == 0:
        raise ValueError(f"{value!r}: a duration must not be zero")
    return Duration(count * _UNIT_SECONDS[m.group(2).lower()], value)


def cadence(value: str) -> Duration:
    """A duration whose instants fall at the same UTC times on every node."""
    d = duration(value)
    count, unit = int(value[:-1]), value[-1].lower()
    if unit in ("s", "m") and not (count < 60 and 60 % count == 0):
        divisors = ", ".join(f"{n}{unit}" for n in range(1, 60) if 60 % n == 0)
        whole = "minute" if unit == "s" else "hour"
        raise ValueError(f"{value!r}: a cadence must divide the {whole} ({divisors})")
    if unit == "h" and not (24 % count == 0 or count % 24 == 0):
        raise ValueError(f"{value!r}: a cadence in hours must divide the day (1h, 2h, 3h, 4h, "
                         "6h, 8h, 12h, 24h) or be a multiple of 24h")
    return d


def volume(value: str) -> int:
    m = _VOLUME.fullmatch(value)
    if not m:
        raise ValueError(f"{value!r} is not a volume (write bytes, or a number with K, M or G)")
    return int(m.group(1)) * 1024 ** " KMG".index(m.group(2) or " ")


def count(value: str) -> int:
    if not value.isdigit() or int(value) == 0:
        raise ValueError(f"{value!r} is not a positive whole number")
    return int(value)


def strings(value: str) -> tuple[str, ...]:
    return tuple(value.split(",")) if value else ()


def program(value: str) -> str:
    """A program Sonar runs: an absolute path without ``..`` or spaces, or "" to disable."""
    if value and not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path (or \"\" to disable)")
    if "/../" in value or value.endswith("/.."):
        raise ValueError(f"{value!r} must not contain .. elements")
    if " " in value:
        raise ValueError(f"{value!r} must not contain spaces")
    return value


def text(value: str) -> str:
    return value


def choice(*options: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return value
    return parse
