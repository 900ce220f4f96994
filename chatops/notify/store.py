"""The notifications tables: events seen once, one row per (event, target), and their states.

pending -> delivered | dead (after the last attempt; ``chatops notifications retry`` re-pends);
suppressed (over the per-user cap) -> summarised (counted in a "N further notifications were
suppressed" message); dropped (by an admin). Every event therefore ends delivered,
suppressed-with-count, or dead-lettered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, Row, bindparam, func, insert, select, update

from chatops.db import notifications, notify_events, reading, storable_int
from chatops.redact import redact

STATES = ("pending", "delivered", "dead", "suppressed", "summarised", "dropped")


def seen(engine: Engine, event_ids: Iterable[str]) -> set[str]:
    """Which of these event ids were handled before."""
    ids = list(event_ids)
    if not ids:
        return set()
    with reading(engine) as conn:
        return set(conn.execute(select(notify_events.c.event_id)
                                .where(notify_events.c.event_id.in_(ids))).scalars())


def _values(rows: Iterable[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
    return [{"event_id": r.get("event_id"), "connector": r["connector"], "target": r["target"],
             "cluster_user": r.get("cluster_user"), "payload": json.dumps(r["payload"]),
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
            conn.execute(insert(notifications), values)


def recent_count(engine: Engine, cluster_user: str, since: float) -> int:
    """Notifications queued for a user since ``since`` that count against the cap."""
    with reading(engine) as conn:
        return conn.execute(select(func.count()).select_from(notifications).where(
            notifications.c.cluster_user == cluster_user, notifications.c.created_at >= since,
            notifications.c.state.not_in(("suppressed", "summarised")))).scalar() or 0


def add(engine: Engine, rows: Iterable[Mapping[str, Any]], now: float | None = None) -> int:
    values = _values(rows, time.time() if now is None else now)
    if values:
        with engine.begin() as conn:
            conn.execute(insert(notifications), values)
    return len(values)


def pending(engine: Engine, after_id: int = 0) -> list[Row]:
    with reading(engine) as conn:
        return list(conn.execute(select(notifications).where(
            notifications.c.state == "pending", notifications.c.id > after_id)
            .order_by(notifications.c.id)))


def pending_ids(engine: Engine) -> set[int]:
    with reading(engine) as conn:
        return set(conn.execute(select(notifications.c.id).where(
            notifications.c.state == "pending")).scalars())


def delivered(engine: Engine, row_id: int, attempts: int, now: float | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(update(notifications).where(notifications.c.id == row_id).values(
            state="delivered", attempts=attempts,
            delivered_at=time.time() if now is None else now))


def delivered_many(engine: Engine, done: list[tuple[int, int]],
                   now: float | None = None) -> None:
    """Mark several rows delivered in one transaction: (id, attempts) pairs."""
    now = time.time() if now is None else now
    statement = (update(notifications).where(notifications.c.id == bindparam("row_id"))
                 .values(state="delivered", attempts=bindparam("row_attempts"),
                         delivered_at=now))
    with engine.begin() as conn:
        conn.execute(statement, [{"row_id": i, "row_attempts": a} for i, a in done])


def retry(engine: Engine, row_id: int, attempts: int, when: float, error: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(notifications).where(notifications.c.id == row_id).values(
            attempts=attempts, next_attempt_at=when, last_error=redact(error)[:2000]))


def dead(engine: Engine, row_id: int, attempts: int, error: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(notifications).where(notifications.c.id == row_id).values(
            state="dead", attempts=attempts, last_error=redact(error)[:2000]))


def summaries_due(engine: Engine, window: float, now: float | None = None) -> list[dict]:
    """Suppressed rows whose cap window has passed, grouped per target and marked summarised."""
    now = time.time() if now is None else now
    n = notifications
    out = []
    with engine.begin() as conn:
        groups = conn.execute(
            select(n.c.connector, n.c.target, n.c.cluster_user, func.count(), func.max(n.c.id))
            .where(n.c.state == "suppressed")
            .group_by(n.c.connector, n.c.target, n.c.cluster_user)
            .having(func.min(n.c.created_at) <= now - window)).all()
        for connector, target, user, count, last_id in groups:
            conn.execute(update(n).where(
                n.c.state == "suppressed", n.c.connector == connector, n.c.target == target,
                n.c.cluster_user == user if user is not None else n.c.cluster_user.is_(None),
                n.c.id <= last_id).values(state="summarised"))
            out.append({"connector": connector, "target": target, "cluster_user": user,
                        "count": count})
    return out


def listing(engine: Engine, state: str | None = None, limit: int = 50) -> list[Row]:
    query = select(notifications).order_by(notifications.c.id.desc()).limit(limit)
    if state:
        query = query.where(notifications.c.state == state)
    with reading(engine) as conn:
        return list(conn.execute(query))


def counts(engine: Engine) -> dict[str, int]:
    with reading(engine) as conn:
        return dict(conn.execute(select(notifications.c.state, func.count())
                                 .group_by(notifications.c.state)).all())


def set_state(engine: Engine, ids: Iterable[int] | None, new_state: str,
              from_states: tuple[str, ...]) -> int:
    """retry (dead -> pending, attempts reset) or drop (pending/dead -> dropped)."""
    values: dict[str, Any] = {"state": new_state}
    if new_state == "pending":
        values.update(attempts=0, next_attempt_at=time.time())
    query = update(notifications).where(notifications.c.state.in_(from_states))
    if ids is not None:
        # A number too big for any row matches none (and the driver could not bind it).
        query = query.where(notifications.c.id.in_([i for i in ids if storable_int(i)]))
    with engine.begin() as conn:
        return conn.execute(query.values(**values)).rowcount
