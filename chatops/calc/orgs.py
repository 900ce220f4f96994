"""Organisations: a tree loaded from HPC_bot's ``organizations.csv`` (``label``, ``name``,
``alias``, ``parent``: the parent's label), matched by label, name or alias when a user sets
their profile."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, func, or_, select

from chatops.db import insert_new, organizations, reading

COLUMNS = ("label", "name", "alias", "parent")


def read_csv(lines: Iterable[str]) -> tuple[list[dict[str, str]], list[str]]:
    """The rows of the file, and every problem in it (each with its line)."""
    reader = csv.DictReader(lines)
    missing = [c for c in ("label", "name") if c not in (reader.fieldnames or [])]
    if missing:
        return [], [f"the header must name the columns {', '.join(COLUMNS)}; "
                    f"{', '.join(missing)} missing"]
    rows, problems, labels = [], [], set()
    for number, raw in enumerate(reader, 2):
        row = {c: (raw.get(c) or "").strip() for c in COLUMNS}
        if not row["label"] or not row["name"]:
            problems.append(f"line {number}: a label and a name are required")
        elif row["label"] in labels:
            problems.append(f"line {number}: label {row['label']!r} appears twice")
        else:
            labels.add(row["label"])
            rows.append(row)
    for row in rows:
        if row["parent"] and row["parent"] not in labels:
            problems.append(f"organisation {row['label']!r}: parent {row['parent']!r} is not "
                            "a label of the file")
    return rows, problems


def load(engine: Engine, rows: list[dict[str, str]]) -> int:
    """Replace the organisations with ``rows``; how many there are."""
    with engine.begin() as conn:
        conn.execute(organizations.delete())
        for row in rows:
            conn.execute(insert_new(conn.engine, organizations, label=row["label"],
                                    name=row["name"], alias=row["alias"] or None,
                                    parent=row["parent"] or None))
    return len(rows)


def match(engine: Engine, text: str) -> tuple[list[Any], bool]:
    """The organisations ``text`` names (by label, name or alias, any case), and whether any
    are loaded at all."""
    wanted = text.strip().lower()
    with reading(engine) as conn:
        loaded = conn.execute(select(func.count()).select_from(organizations)).scalar() > 0
        found = list(conn.execute(select(organizations).where(or_(
            func.lower(organizations.c.label) == wanted,
            func.lower(organizations.c.name) == wanted,
            func.lower(organizations.c.alias) == wanted))))
    return found, loaded


def chain(conn: Any, label: str | None) -> list[Any]:
    """The organisation ``label`` and its ancestors, nearest first (a loop in the tree ends
    the walk)."""
    rows, seen = [], set()
    while label and label not in seen:
        seen.add(label)
        row = conn.execute(select(organizations).where(organizations.c.label == label)).first()
        if row is None:
            break
        rows.append(row)
        label = row.parent
    return rows


def path(engine: Engine, label: str) -> str:
    """``Faculty › Department`` from the root to ``label``."""
    with reading(engine) as conn:
        return " › ".join(row.name for row in reversed(chain(conn, label)))
