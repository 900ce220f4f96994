"""Parameter types a job may declare: a value is checked (and written one way) before the job is
queued, so ``sleep abc`` is refused in chat instead of failing, or worse succeeding, on the host.

In job_configs.py, a job's ``params`` maps a template field to its type::

    "params": {
        "seconds": "int",                               # or {"type": "int", "min": 1, "max": 600}
        "wait": "duration",                             # 90, 90s, 5m, 1h30m, 2d, 1:30:00 -> seconds
        "mode": ["fast", "thorough"],                   # one of these (any case)
        "branch": re.compile(r"[A-Za-z0-9._/-]+"),      # the whole value must match
    }

The dict form ``{"type": "choice", "choices": [...]}`` and ``{"type": "regex", "pattern": "..."}``
is the same as the shorthands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatops.config_checks import Error, unknown_keys

KINDS = ("int", "duration", "choice", "regex")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_UNIT_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.I)
_CLOCK = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})")
PARAM_KEYS = {"type", "min", "max", "choices", "pattern"}


def parse_duration(text: str) -> float | None:
    """Seconds in ``90``, ``90s``, ``5m``, ``1h30m``, ``2d``, ``1w``, ``1:30:00`` or ``5:00``;
    None if it is not a length of time."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    clock = _CLOCK.fullmatch(text)
    if clock:
        hours, minutes, seconds = clock.groups()
        if hours is None:  # M:SS
            return int(minutes) * 60 + int(seconds)
        return int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    parts = _UNIT_PART.findall(text)
    if parts and _UNIT_PART.sub("", text).strip() == "":
        return sum(float(number) * UNITS[unit] for number, unit in parts)
    return None


@dataclass(frozen=True)
class ParamType:
    kind: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None

    def check(self, value: str) -> tuple[str, str | None]:
        """The value as the job gets it, or the problem with it (what is wanted, an example)."""
        text = value.strip()
        if self.kind == "choice":
            for choice in self.choices:
                if choice.lower() == text.lower():
                    return choice, None
            return value, "one of " + ", ".join(f"`{c}`" for c in self.choices)
        if self.kind == "regex":
            if self.pattern is not None and re.fullmatch(self.pattern, text):
                return text, None
            return value, f"text matching `{self.pattern}`"
        if self.kind == "int":
            number: float | None = int(text) if re.fullmatch(r"[+-]?\d+", text) else None
            wanted, shown = "a whole number", "5"
        else:
            number = parse_duration(text)
            wanted, shown = "a length of time", "90, 90s, 5m, 1h30m or 1:30:00"
        if number is None:
            return value, f"{wanted} such as {shown}"
        if self.minimum is not None and number < self.minimum:
            return value, f"{wanted} of at least {self.minimum:g}" + (
                " seconds" if self.kind == "duration" else "")
        if self.maximum is not None and number > self.maximum:
            return value, f"{wanted} of at most {self.maximum:g}" + (
                " seconds" if self.kind == "duration" else "")
        return f"{number:g}" if self.kind == "duration" else str(int(number)), None


def check_args(types: Mapping[str, ParamType], args: Mapping[str, str]
               ) -> tuple[dict[str, str], str | None]:
    """The arguments as the job gets them, or the first problem, naming the parameter."""
    checked = dict(args)
    for name, value in args.items():
        kind = types.get(name)
        if kind is None:
            continue
        checked[name], wanted = kind.check(value)
        if wanted:
            return checked, f"[{name}] must be {wanted}, not `{value}`"
    return checked, None


def build_param_types(error: Error, where: str, raw: Any,
                      fields: set[str]) -> dict[str, ParamType]:
    """A job's ``params``, validated; every problem goes to ``error(where, message)``."""
    if not isinstance(raw, Mapping):
        error(where, f"'params' must be a dict of template field -> type, not "
                     f"{type(raw).__name__}")
        return {}
    types = {}
    for name, spec in raw.items():
        here = f"{where}, param {name!r}"
        if name not in fields:
            error(here, f"is not a field of the job's run_args_template "
                        f"({', '.join(sorted(fields)) or 'it has none'})")
            continue
        built = _build_one(error, here, spec)
        if built is not None:
            types[name] = built
    return types


def _build_one(error: Error, where: str, spec: Any) -> ParamType | None:
    if isinstance(spec, str):
        spec = {"type": spec}
    elif isinstance(spec, (list, tuple)):
        spec = {"type": "choice", "choices": spec}
    elif isinstance(spec, re.Pattern):
        spec = {"type": "regex", "pattern": spec.pattern}
    if not isinstance(spec, Mapping):
        error(where, f"a type is 'int', 'duration', a list of choices, a re.compile(...) or a "
                     f"dict with 'type', not {type(spec).__name__}")
        return None
    unknown_keys(error, where, spec, PARAM_KEYS)
    kind = spec.get("type")
    if kind is None:
        error(where, f"'type' is required: one of {', '.join(KINDS)}")
        return None
    if kind not in KINDS:
        error(where, f"type {kind!r} is not one of {', '.join(KINDS)} (a pattern is "
                     "re.compile(r'...') or {'type': 'regex', 'pattern': r'...'})")
        return None
    if kind == "choice":
        choices = spec.get("choices")
        if (not isinstance(choices, (list, tuple)) or not choices
                or not all(isinstance(c, str) and c.strip() for c in choices)):
            error(where, "a choice needs 'choices': a list of words")
            return None
        return ParamType(kind, choices=tuple(choices))
    if kind == "regex":
        pattern = spec.get("pattern")
        try:
            re.compile(pattern if isinstance(pattern, str) else "(")
        except re.error as exc:
            error(where, f"'pattern' is not a regular expression: {exc}")
            return None
        return ParamType(kind, pattern=pattern)
    bounds = {}
    for key in ("min", "max"):
        value = spec.get(key)
        if isinstance(value, str) and kind == "duration":
            value = parse_duration(value) or value  # a string left is refused below
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            error(where, f"{key!r} must be a number" + (" or a duration like '10m'"
                                                         if kind == "duration" else ""))
            value = None
        bounds[key] = value
    if None not in bounds.values() and bounds["min"] > bounds["max"]:
        error(where, f"'min' ({bounds['min']:g}) is above 'max' ({bounds['max']:g})")
    return ParamType(kind, minimum=bounds["min"], maximum=bounds["max"])


# The one limit on a job's arguments, the same on SQLite and PostgreSQL (docs/configuration.md):
# the UTF-8 bytes of their values together. Arguments end up on a command line and in reports.
MAX_ARGS_BYTES = 16 * 1024


def args_problem(args: Mapping[str, Any]) -> str | None:
    """Why these arguments cannot be queued (too long, or a NUL no command line can hold), or
    None."""
    for name, value in args.items():
        if "\x00" in str(value):
            return f"[{name}] has a NUL character, which no command line can hold"
    size = sum(len(str(value).encode("utf-8", "surrogatepass")) for value in args.values())
    if size <= MAX_ARGS_BYTES:
        return None
    return (f"the arguments are {size:,} bytes long; at most {MAX_ARGS_BYTES:,} bytes "
            f"({MAX_ARGS_BYTES // 1024} KiB) are accepted")
