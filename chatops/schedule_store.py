"""Schedules in the database: fires taken exactly once, pause state, and what happened last.

A fire is taken by inserting ``(namespace, schedule, fire_at)`` into ``schedule_fires``, whose
unique key lets one process win; the winner queues the job (or joins the same job still
queued) in that same transaction. So two dispatchers, or a dispatcher restarted in the middle of
a fire, never run a fire twice, and a crash never leaves a fire taken without its job.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from chatops.db import (
    args_digest,
    insert_new,
    jobs,
    reading,
    subscribers,
)
from chatops.job_config import JobSpec
from chatops.queue import canonical_args, stored_concurrency
from chatops.schedule_config import ScheduleSpec
from chatops.schedule_tables import schedule_fires, schedule_states


@dataclass(frozen=True)
class Fire:
    outcome: str  # queued | joined | skipped
    job_id: int | None = None


def take_fire(engine: Engine, spec: ScheduleSpec, job: JobSpec, fire_at: float, *,
              platform: str, channel: str, worker: str, late_by: float = 0.0,
              held_until: float | None = None, skip: bool = False,
              now: float | None = None) -> Fire | None:
    """Take the fire ``fire_at`` of ``spec`` and queue its job (or join the one still queued);
    ``skip`` records it as skipped instead. None: another process took this fire."""
    now = time.time() if now is None else now
    for attempt in (1, 2):
        try:
            return _take(engine, spec, job, fire_at, platform=platform, channel=channel,
                         worker=worker, late_by=late_by, held_until=held_until, skip=skip,
                         now=now)
        except IntegrityError:  # someone queued the same job meanwhile: join it this time
            if attempt == 2:
                raise
    return None


def _take(engine: Engine, spec: ScheduleSpec, job: JobSpec, fire_at: float, *, platform: str,
          channel: str, worker: str, late_by: float, held_until: float | None, skip: bool,
          now: float) -> Fire | None:
    args = canonical_args(spec.arguments)
    who = f"schedule:{spec.key}"
    with engine.begin() as conn:
        fire_id = conn.execute(insert_new(
            engine, schedule_fires, namespace=spec.namespace, schedule=spec.name,
            fire_at=fire_at, outcome="skipped" if skip else "queued", late_by=late_by,
            held_until=held_until, worker=worker, created_at=now)).scalar()
        if fire_id is None:
            return None
        if skip:
            return Fire("skipped")
        pending = conn.execute(select(jobs.c.id, jobs.c.platform, jobs.c.channel).where(
            jobs.c.job_type == spec.job_type, jobs.c.args_hash == args_digest(args),
            jobs.c.state == "queued")
            .with_for_update()).first()
        if pending is None:
            job_id = conn.execute(insert(jobs).values(
                namespace=spec.namespace, job_type=spec.job_type, args=args, state="queued",
                concurrency=stored_concurrency(job.concurrency), timeout=job.timeout,
                created_at=now, start_after=now, platform=platform, channel=channel,
                requested_by=who, is_direct=False, cancel_requested=False)).inserted_primary_key[0]
            outcome = "queued"
        else:
            job_id, outcome = pending.id, "joined"
            told = {(pending.platform, pending.channel)} | {
                (r.platform, r.channel) for r in conn.execute(
                    select(subscribers.c.platform, subscribers.c.channel)
                    .where(subscribers.c.job_id == job_id))}
            if (platform, channel) not in told:  # one report per channel, however many fires
                conn.execute(insert(subscribers).values(
                    job_id=job_id, platform=platform, channel=channel, user=who,
                    is_direct=False, created_at=now))
        conn.execute(update(schedule_fires).where(schedule_fires.c.id == fire_id)
                     .values(job_id=job_id, outcome=outcome))
    return Fire(outcome, job_id)


def sync_states(engine: Engine, specs: Iterable[ScheduleSpec], now: float) -> dict[str, Row]:
    """Each schedule's state row, made for a new schedule; a changed trigger starts afresh (its
    earlier instants are not "missed"). Keyed by ``namespace/name``."""
    specs = list(specs)
    with engine.begin() as conn:
        rows = {f"{r.namespace}/{r.schedule}": r for r in conn.execute(select(schedule_states))}
        for spec in specs:
            row = rows.get(spec.key)
            if row is None:
                conn.execute(insert_new(
                    engine, schedule_states, namespace=spec.namespace, schedule=spec.name,
                    trigger=spec.trigger.text, anchor_at=now))
            elif row.trigger != spec.trigger.text:
                conn.execute(update(schedule_states).where(
                    schedule_states.c.namespace == spec.namespace,
                    schedule_states.c.schedule == spec.name,
                    schedule_states.c.trigger == row.trigger)
                    .values(trigger=spec.trigger.text, anchor_at=now))
        return {f"{r.namespace}/{r.schedule}": r for r in conn.execute(select(schedule_states))}


def set_paused(engine: Engine, spec: ScheduleSpec, by: str | None, now: float) -> bool:
    """Pause (``by`` someone) or resume (``by`` None); False when it already was so. A resumed
    schedule does not run the fires it missed while paused."""
    sync_states(engine, [spec], now)
    where = (schedule_states.c.namespace == spec.namespace,
             schedule_states.c.schedule == spec.name)
    if by is not None:
        change = update(schedule_states).where(*where, schedule_states.c.paused_at.is_(None)
                                               ).values(paused_at=now, paused_by=by)
    else:
        change = update(schedule_states).where(*where, schedule_states.c.paused_at.is_not(None)
                                               ).values(paused_at=None, paused_by=None,
                                                        anchor_at=now)
    with engine.begin() as conn:
        return conn.execute(change).rowcount == 1


def paused(engine: Engine, spec: ScheduleSpec) -> Row | None:
    """The state row when ``spec`` is paused, else None."""
    with reading(engine) as conn:
        return conn.execute(select(schedule_states).where(
            schedule_states.c.namespace == spec.namespace,
            schedule_states.c.schedule == spec.name,
            schedule_states.c.paused_at.is_not(None))).first()


def last_fires(engine: Engine) -> dict[str, Row]:
    """Each schedule's latest fire, with its job's state and summary, by ``namespace/name``."""
    latest = (select(schedule_fires.c.namespace, schedule_fires.c.schedule,
                     func.max(schedule_fires.c.fire_at).label("fire_at"))
              .group_by(schedule_fires.c.namespace, schedule_fires.c.schedule).subquery())
    query = (select(schedule_fires, jobs.c.state, jobs.c.summary)
             .join(latest, (latest.c.namespace == schedule_fires.c.namespace)
                   & (latest.c.schedule == schedule_fires.c.schedule)
                   & (latest.c.fire_at == schedule_fires.c.fire_at))
             .outerjoin(jobs, jobs.c.id == schedule_fires.c.job_id))
    with reading(engine) as conn:
        return {f"{r.namespace}/{r.schedule}": r for r in conn.execute(query)}


def states(engine: Engine) -> dict[str, Row]:
    with reading(engine) as conn:
        return {f"{r.namespace}/{r.schedule}": r
                for r in conn.execute(select(schedule_states))}


def fires_of_job(engine: Engine, job_id: int) -> list[Row]:
    """The fires a job serves (more than one when later fires joined it), oldest first."""
    with reading(engine) as conn:
        return list(conn.execute(select(schedule_fires).where(schedule_fires.c.job_id == job_id)
                                 .order_by(schedule_fires.c.fire_at)))
