"""The cluster monitor in the database: leases, the latest state, history, status boards.

A cluster is polled by whoever holds its lease (``take_lease``); the holder renews it at every
poll, and a lease whose holder died expires, so another dispatcher takes over within a cadence
or two. Every write of a poll's result is fenced: it happens only while the writer still holds
the lease, so a poller that lost its lease midway posts nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Row, insert, select, update

from chatops.cluster_status import OFFLINE, Snapshot
from chatops.db import insert_new, reading
from chatops.monitor_tables import (
    monitor_boards,
    monitor_leases,
    monitor_states,
    monitor_transitions,
    telemetry_clusters,
)


@dataclass(frozen=True)
class State:
    """A cluster's stored state: what the next poll compares against."""

    snapshot: Snapshot
    since: float
    failures: int
    last_error: str
    polled_at: float
    poll_seconds: float | None
    first_polled_at: float

    @classmethod
    def from_row(cls, row: Row) -> State:
        return cls(Snapshot.from_json(json.loads(row.snapshot)), row.since, row.failures,
                   row.last_error or "", row.polled_at, row.poll_seconds, row.first_polled_at)


def take_lease(engine: Engine, cluster: str, holder: str, now: float, ttl: float) -> bool:
    """Hold (or renew) the cluster's lease until ``now + ttl``; False: another process holds it."""
    with engine.begin() as conn:
        if conn.execute(insert_new(engine, monitor_leases, cluster=cluster, holder=holder,
                                   expires_at=now + ttl, taken_at=now)).scalar() is not None:
            return True
        return conn.execute(update(monitor_leases).where(
            monitor_leases.c.cluster == cluster,
            (monitor_leases.c.holder == holder) | (monitor_leases.c.expires_at < now))
            .values(holder=holder, expires_at=now + ttl)).rowcount == 1


def release_lease(engine: Engine, cluster: str, holder: str) -> None:
    """Let another process take the cluster at once (a clean stop, a removed monitor)."""
    with engine.begin() as conn:
        conn.execute(update(monitor_leases).where(monitor_leases.c.cluster == cluster,
                                                  monitor_leases.c.holder == holder)
                     .values(expires_at=0.0))


def _still_held(conn: Connection, cluster: str, holder: str, now: float) -> bool:
    return conn.execute(select(monitor_leases.c.holder).where(
        monitor_leases.c.cluster == cluster, monitor_leases.c.holder == holder,
        monitor_leases.c.expires_at >= now)).first() is not None


def holds(engine: Engine, cluster: str, holder: str, now: float) -> bool:
    with reading(engine) as conn:
        return _still_held(conn, cluster, holder, now)


def load(engine: Engine, cluster: str) -> State | None:
    with reading(engine) as conn:
        row = conn.execute(select(monitor_states).where(monitor_states.c.cluster == cluster)
                           ).first()
    return State.from_row(row) if row else None


def states(engine: Engine) -> dict[str, State]:
    with reading(engine) as conn:
        return {r.cluster: State.from_row(r) for r in conn.execute(select(monitor_states))}


def save(engine: Engine, cluster: str, holder: str, state: State, transitions: Iterable[dict],
         now: float) -> bool:
    """Record a poll's result (and its transitions) if ``holder`` still holds the lease."""
    values = dict(state=state.snapshot.state, since=state.since,
                  snapshot=json.dumps(state.snapshot.to_json()), failures=state.failures,
                  last_error=state.last_error or None, polled_at=state.polled_at,
                  poll_seconds=state.poll_seconds, polled_by=holder,
                  first_polled_at=state.first_polled_at)
    with engine.begin() as conn:
        if not _still_held(conn, cluster, holder, now):
            return False
        changed = conn.execute(update(monitor_states).where(monitor_states.c.cluster == cluster)
                               .values(**values)).rowcount
        if not changed:
            conn.execute(insert(monitor_states).values(cluster=cluster, **values))
        rows = [dict(cluster=cluster, **t) for t in transitions]
        if rows:
            conn.execute(insert(monitor_transitions), rows)
    return True


def boards(engine: Engine, cluster: str) -> dict[str, Row]:
    with reading(engine) as conn:
        return {r.target: r for r in conn.execute(
            select(monitor_boards).where(monitor_boards.c.cluster == cluster))}


def remember_board(engine: Engine, cluster: str, target: str, delivery_id: int,
                   now: float) -> None:
    with engine.begin() as conn:
        if not conn.execute(update(monitor_boards).where(
                monitor_boards.c.cluster == cluster, monitor_boards.c.target == target)
                .values(delivery_id=delivery_id, posted_at=now)).rowcount:
            conn.execute(insert(monitor_boards).values(cluster=cluster, target=target,
                                                       delivery_id=delivery_id, posted_at=now))


def transitions(engine: Engine, cluster: str, since: float) -> list[Row]:
    """The cluster's transitions (cluster and nodes) after ``since``, oldest first."""
    with reading(engine) as conn:
        return list(conn.execute(select(monitor_transitions).where(
            monitor_transitions.c.cluster == cluster, monitor_transitions.c.at >= since)
            .order_by(monitor_transitions.c.at, monitor_transitions.c.id)))


def uptime(engine: Engine, cluster: str, start: float, now: float) -> float | None:
    """The share of ``start``..``now`` the cluster was not offline (None: never polled in it)."""
    with reading(engine) as conn:
        rows = list(conn.execute(select(monitor_transitions.c.to_state, monitor_transitions.c.at)
                                 .where(monitor_transitions.c.cluster == cluster,
                                        monitor_transitions.c.node.is_(None),
                                        monitor_transitions.c.at < now)
                                 .order_by(monitor_transitions.c.at,
                                           monitor_transitions.c.id)))
    if not rows:
        return None
    known_from = max(start, rows[0].at)
    if known_from >= now:
        return None
    up, state, at = 0.0, None, known_from
    for row in rows:
        moment = max(row.at, known_from)
        if state is not None and state != OFFLINE:
            up += moment - at
        state, at = row.to_state, moment
    if state != OFFLINE:
        up += now - at
    return up / (now - known_from)


def feed(engine: Engine, cluster: str, snapshot: Snapshot, now: float) -> None:
    """What the telemetry feed heard of ``cluster`` (a ``cluster`` envelope), for its monitor."""
    values = dict(received_at=now, snapshot=json.dumps(snapshot.to_json()))
    with engine.begin() as conn:
        if not conn.execute(update(telemetry_clusters)
                            .where(telemetry_clusters.c.cluster == cluster)
                            .values(**values)).rowcount:
            conn.execute(insert(telemetry_clusters).values(cluster=cluster, **values))


def fed(engine: Engine, cluster: str) -> tuple[float, Snapshot] | None:
    """When the feed last heard of ``cluster``, and what."""
    with reading(engine) as conn:
        row = conn.execute(select(telemetry_clusters)
                           .where(telemetry_clusters.c.cluster == cluster)).first()
    return (row.received_at, Snapshot.from_json(json.loads(row.snapshot))) if row else None
