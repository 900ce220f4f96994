"""The one outbound table (``deliveries``): everything said to a person, and its states.

A row holds a platform-neutral message — its ``kind`` and fields: a job's ``report``, a
``notice`` (text), a ``slurm`` event with its statistics — that the platform renders when it
sends. States: pending -> sending (a lease) -> delivered | dead (after the last attempt, or an
error no retry can help; ``chatops notifications retry`` re-pends it); suppressed (a Slurm
notification over its user's cap) -> summarised; dropped (by an admin). The sender of each
platform (``bot/sender.py``) claims one row at a time per target; a claim is a lease, so a row
whose sender died comes due again when the lease ends, and resumes after the steps its
``progress`` records.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, Row, bindparam, func, or_, select, update

from chatops.db import deliveries, jobs, reading, storable_int
from chatops.redact import redact, redacted_json

STATES = ("pending", "sending", "delivered", "dead", "suppressed", "summarised", "dropped")
LEASE_SECONDS = 600.0  # a row "sending" longer than this: its sender died
_d = deliveries


def _due(now: float) -> Any:
    """Pending rows, and rows whose sender's lease ran out."""
    return or_(_d.c.state == "pending",
               (_d.c.state == "sending") & (_d.c.next_attempt_at <= now))


def waiting(engine: Engine, platform: str, after_id: int = 0, now: float | None = None,
            limit: int = 5000) -> list[Row]:
    """Rows this platform's sender should hold (due or not yet), oldest first."""
    now = time.time() if now is None else now
    with reading(engine) as conn:
        return list(conn.execute(select(_d).where(
            _d.c.platform == platform, _d.c.id > after_id, _due(now))
            .order_by(_d.c.id).limit(limit)))


def waiting_ids(engine: Engine, platform: str, now: float | None = None) -> set[int]:
    now = time.time() if now is None else now
    with reading(engine) as conn:
        return set(conn.execute(select(_d.c.id).where(_d.c.platform == platform, _due(now)))
                   .scalars())


def claim(engine: Engine, row_id: int, lease: float = LEASE_SECONDS,
          now: float | None = None) -> Row | None:
    """Take one row for sending (a lease); None when another sender has it or it is gone."""
    rows = claim_many(engine, [row_id], lease, now)
    return rows[0] if rows else None


def claim_many(engine: Engine, ids: list[int], lease: float = LEASE_SECONDS,
               now: float | None = None) -> list[Row]:
    """Take these rows for sending in one transaction (the sender's heads of several target
    queues); those another sender holds, or that are gone, are left out."""
    now = time.time() if now is None else now
    with engine.begin() as conn:
        return list(conn.execute(update(_d).where(_d.c.id.in_(ids), _due(now))
                                 .values(state="sending", attempts=_d.c.attempts + 1,
                                         next_attempt_at=now + lease)
                                 .returning(*_d.c)))


def save_progress(engine: Engine, row_id: int, progress: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(_d).where(_d.c.id == row_id).values(progress=progress))


def delivered_many(engine: Engine, sent: Iterable[tuple[int, int]],
                   now: float | None = None) -> int:
    """Mark rows delivered: (id, the revision that was sent) pairs. A row edited meanwhile
    is pending again at once (its sender sends the newer text: an edit of the message); how
    many were."""
    now = time.time() if now is None else now
    params = [{"row_id": i, "row_revision": r} for i, r in sent]
    if not params:
        return 0
    same = (_d.c.id == bindparam("row_id"), _d.c.revision == bindparam("row_revision"))
    edited = (_d.c.id == bindparam("row_id"), _d.c.revision != bindparam("row_revision"),
              _d.c.state == "sending")
    with engine.begin() as conn:
        conn.execute(update(_d).where(*same).values(state="delivered", delivered_at=now),
                     params)
        again = conn.execute(update(_d).where(*edited).values(state="pending",
                                                              next_attempt_at=now), params)
        return max(0, again.rowcount or 0)


def revise(engine: Engine, row_id: int, payload: dict[str, Any],
           now: float | None = None) -> bool:
    """New text for a message that changes (``live``): its platform edits the message it
    sent. Edits coalesce: however many come while one is in flight, the next send carries the
    newest only. False when the row is gone, dead or dropped."""
    now = time.time() if now is None else now
    with engine.begin() as conn:
        row = conn.execute(select(_d.c.state, _d.c.next_attempt_at).where(_d.c.id == row_id)
                           ).first()
        if row is None or row.state not in ("pending", "sending", "delivered"):
            return False
        values: dict[str, Any] = {"payload": redacted_json(payload),
                                  "revision": _d.c.revision + 1}
        if row.state == "delivered":
            values.update(state="pending", next_attempt_at=now)
        # "sending": the sender in flight finds the row edited when it is done, and sends on
        return conn.execute(update(_d).where(_d.c.id == row_id).values(**values)).rowcount == 1


def retry(engine: Engine, row_id: int, when: float, error: str, attempts: int) -> None:
    """Due again at ``when``; ``attempts`` is what counts (a 429 does not)."""
    with engine.begin() as conn:
        conn.execute(update(_d).where(_d.c.id == row_id).values(
            state="pending", next_attempt_at=when, attempts=attempts,
            last_error=redact(error)[:2000]))


def dead(engine: Engine, row_id: int, error: str, attempts: int | None = None) -> Row | None:
    """Give up on a row (a dead letter) and record why on its job, if any (the job itself
    keeps its state). ``attempts``: the ones that count (a 429 does not)."""
    error = redact(error)[:2000]
    values: dict[str, Any] = {"state": "dead", "last_error": error}
    if attempts is not None:
        values["attempts"] = attempts
    with engine.begin() as conn:
        row = conn.execute(update(_d).where(_d.c.id == row_id).values(**values)
                           .returning(*_d.c)).first()
        if row is not None and row.job_id is not None:
            conn.execute(update(jobs).where(jobs.c.id == row.job_id)
                         .values(delivery_error=error))
        return row


def next_due(engine: Engine, platform: str) -> float | None:
    with reading(engine) as conn:
        return conn.execute(select(func.min(_d.c.next_attempt_at)).where(
            _d.c.platform == platform, _d.c.state.in_(("pending", "sending")))).scalar()


# -- what an admin sees and does (``chatops notifications``) -------------------------------------

def listing(engine: Engine, state: str | None = None, limit: int = 50) -> list[Row]:
    query = select(_d).order_by(_d.c.id.desc()).limit(limit)
    if state:
        query = query.where(_d.c.state == state)
    with reading(engine) as conn:
        return list(conn.execute(query))


def counts(engine: Engine, platform: str | None = None) -> dict[str, int]:
    query = select(_d.c.state, func.count()).group_by(_d.c.state)
    if platform:
        query = query.where(_d.c.platform == platform)
    with reading(engine) as conn:
        return dict(conn.execute(query).all())


def set_state(engine: Engine, ids: Iterable[int] | None, new_state: str,
              from_states: tuple[str, ...]) -> int:
    """retry (dead -> pending, attempts and progress kept) or drop (pending/dead -> dropped)."""
    values: dict[str, Any] = {"state": new_state}
    if new_state == "pending":
        values.update(attempts=0, next_attempt_at=time.time())
    query = update(_d).where(_d.c.state.in_(from_states))
    if ids is not None:
        # A number too big for any row matches none (and the driver could not bind it).
        query = query.where(_d.c.id.in_([i for i in ids if storable_int(i)]))
    with engine.begin() as conn:
        return conn.execute(query.values(**values)).rowcount
