"""The names job_configs.py may define, and a warning for one that looks like a misspelling of
one: Python runs the file, so ``monitor = {...}`` would otherwise be ignored without a word."""

from __future__ import annotations

from collections.abc import Mapping
from difflib import get_close_matches
from types import ModuleType
from typing import Any

SECTIONS = ("raw_config", "admins", "admin_channel", "clusters", "monitors", "runners",
            "calculations", "telemetry", "notifications")
_ALIKE = 0.8  # how alike (0..1) a name must be to a section to be taken for a misspelling


def misspelt_sections(module: Mapping[str, Any]) -> list[str]:
    """A warning for each name of the file that is no section but looks like one (the file's
    own helpers, imports and functions are left alone; ``_name`` is never warned about)."""
    warnings = []
    for name, value in module.items():
        if name.startswith("_") or name in SECTIONS or callable(value) \
                or isinstance(value, ModuleType):
            continue
        close = get_close_matches(name.lower(), SECTIONS, n=1, cutoff=_ALIKE)
        if close:
            warnings.append(f"{name!r} is not a section chatops reads, and is ignored: did you "
                            f"mean {close[0]!r}? (a name of the file's own can start with '_')")
    return warnings
