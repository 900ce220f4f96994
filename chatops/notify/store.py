"""Slurm notifications in the one outbound table: events seen once, one row per (event, target).

A notification is a row of ``deliveries`` (``chatops/outbound.py`` has its states) whose
platform is the connector and whose channel is the target. Over the per-user cap it is
"suppressed", and later "summarised" (counted in a "N further notifications were suppressed"
message). Every event therefore ends delivered, suppressed-with-count, or dead-lettered.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from chatops.db import deliveries, notify_events, reading
from chatops.redact import redacted_json


def seen(engine: Engine, event_ids: Iterable[str]) -> set[str]:
    """Which of these event ids were handled before."""
    ids = list(event_ids)
    if not ids:
        return set()
    with reading(engine) as conn:
        return set(conn.execute(select(notify_events.c.event_id)
                                .where(notify_events.c.event_id.in_(ids))).scalars())


def _values(rows: Iterable[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
    return [{"event_id": r.get("event_id"), "platform": r["connector"], "channel": r["target"],
             "cluster_user": r.get("cluster_user"), "is_direct": False,
             "payload": redacted_json(r["payload"]),
             "state": r.get("state", "pending"), "attempts": 0, "next_attempt_at": now,
             "created_at": now} for r in rows]


def commit(engine: Engine, groups: list[tuple[Mapping[str, Any], list[Mapping[str, Any]]]],
           now: float | None = None) -> None:
    """Record events and their rows in one transaction (IntegrityError: an id was seen)."""
    now = time.time() if now is None else now
    events = [{**meta, "received_at": now, "targets": len(rows)} for meta, rows in groups]
    values = _values([row for _, rows in groups for row in rows], now)
    if not events:
        return
    with engine.begin() as conn:
        conn.execute(insert(notify_events), events)
        if values:
            conn.execute(insert(deliveries), values)


def recent_count(engine: Engine, cluster_user: str, since: float) -> int:
    """Notifications queued for a user since ``since`` that count against the cap."""
    with reading(engine) as conn:
        return conn.execute(select(func.count()).select_from(deliveries).where(
            deliveries.c.cluster_user == cluster_user, deliveries.c.created_at >= since,
            deliveries.c.state.not_in(("suppressed", "summarised")))).scalar() or 0


def add(engine: Engine, rows: Iterable[Mapping[str, Any]], now: float | None = None) -> int:
    values = _values(rows, time.time() if now is None else now)
    if values:
        with engine.begin() as conn:
            conn.execute(insert(deliveries), values)
    return len(values)


def summaries_due(engine: Engine, window: float, now: float | None = None) -> list[dict]:
    """Suppressed rows whose cap window has passed, grouped per target and marked summarised."""
    now = time.time() if now is None else now
    n = deliveries
    out = []
    with engine.begin() as conn:
        groups = conn.execute(
            select(n.c.platform, n.c.channel, n.c.cluster_user, func.count(), func.max(n.c.id))
            .where(n.c.state == "suppressed")
            .group_by(n.c.platform, n.c.channel, n.c.cluster_user)
            .having(func.min(n.c.created_at) <= now - window)).all()
        for connector, target, user, count, last_id in groups:
            conn.execute(update(n).where(
                n.c.state == "suppressed", n.c.platform == connector, n.c.channel == target,
                n.c.cluster_user == user if user is not None else n.c.cluster_user.is_(None),
                n.c.id <= last_id).values(state="summarised"))
            out.append({"connector": connector, "target": target, "cluster_user": user,
                        "count": count})
    return out
