"""Argument types of the command line shared by its commands: numbers people type that reach
the database. argparse's ``int`` takes ``-5`` and 30-digit numbers; these say what they want."""

from __future__ import annotations

import argparse
import re

from chatops.db import MAX_STORED_INT


def count(text: str) -> int:
    """A positive whole number, as in ``--limit 30``."""
    if re.fullmatch(r"\+?[0-9]+", text.strip()) and 1 <= int(text) <= MAX_STORED_INT:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not a count: use a whole number such as 30")


def row_id(text: str) -> int:
    """A job's or notification's number (one too big to be any is simply not found)."""
    if re.fullmatch(r"#?[0-9]+", text.strip()):
        return int(text.strip().lstrip("#"))
    raise argparse.ArgumentTypeError(f"{text!r} is not a number such as 42")
