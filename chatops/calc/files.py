"""Whether a file name sent from chat is safe to write on a cluster, and where files live here.

A name is used as it came (so the program sees what its user named it) only when it is one plain
name: normalised Unicode (NFC), no folder parts, not starting with ``-`` (an option to the
program) or ``.`` (hidden, or ``..``), no control characters, at most MAX_NAME characters.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from chatops.settings import Settings

MAX_NAME = 120
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a file name (None: nothing)."""
    if not name.strip():
        return "is empty"
    if "/" in name or "\\" in name:
        return "has folder parts (`/`)"
    if name.startswith("-"):
        return "starts with `-`"
    if name.startswith("."):
        return "starts with `.`"
    if _CONTROL.search(name):
        return "has control characters"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    return None


def normal(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def extension(name: str) -> str:
    return Path(name).suffix.lower()


def calc_dir(settings: Settings) -> Path:
    """Where inputs wait to be staged and results wait to be sent (CHATOPS_CALC_DIR)."""
    return Path(settings.environ.get("CHATOPS_CALC_DIR") or settings.home / "calcs")


def input_path(settings: Settings, token: str, name: str) -> Path:
    return calc_dir(settings) / "inputs" / token / name


def results_dir(settings: Settings, job_id: int) -> Path:
    return calc_dir(settings) / "results" / str(job_id)


def person_folder(person: str) -> str:
    """A person's folder name on the cluster: their ``platform:id`` with only safe characters."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", person.replace(":", "-", 1))
