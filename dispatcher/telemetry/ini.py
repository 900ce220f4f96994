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

from chatops.cadence import Duration, cadence, duration  # noqa: F401  (the ini value kinds)

NAME = re.compile(r"[a-zA-Z_][-a-zA-Z_0-9]*")
_VOLUME = re.compile(r"(\d+)([KMG]?)")


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
def boolean(value: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise ValueError(f"{value!r} is not a boolean (write true or false)")


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
