"""Calculations, their users and the quota, in the database.

Taking a quota unit is one transaction that locks the person's ``calc_users`` row (on SQLite
every writer holds the database's write lock; on PostgreSQL ``FOR UPDATE``), counts their
counted calculations in the window and inserts the new one: two submissions at once can never
overspend. A calculation that never reached Slurm is refunded (it stops counting).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, func, select, update

from chatops.calc import orgs
from chatops.calc.config import CalcSettings
from chatops.db import calc_link_codes, calc_users, calculations, insert_new, reading

ROLLING = 30 * 86400.0


@dataclass(frozen=True)
class Quota:
    limit: int
    used: int
    resets_at: float | None  # when a unit comes back (None: nothing is used)
    window: str

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True)
class Taken:
    """The outcome of asking for a quota unit: the calculation's row id, or why not."""

    calc_row: int | None
    quota: Quota
    blocked: str | None = None  # the block's reason ("" when none was given)
    registered: bool = False  # the person became a user with this request


def window_start(settings: CalcSettings, now: float) -> float:
    if settings.quota_window == "30 days":
        return now - ROLLING
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def month_end(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0,
                                                      microsecond=0)
    return (moment + timedelta(days=32)).replace(day=1).timestamp()


def canonical(conn: Any, person: str) -> str:
    """The person ``person`` is linked to (``link``), or ``person``."""
    same = conn.execute(select(calc_users.c.same_as).where(calc_users.c.person == person)
                        ).scalar()
    return same or person


def members(conn: Any, person: str) -> list[str]:
    """Every identity of the person ``person`` is (linked ones included)."""
    canon = canonical(conn, person)
    linked = conn.execute(select(calc_users.c.person).where(calc_users.c.same_as == canon))
    return [canon, *linked.scalars()]


def person_members(engine: Engine, person: str) -> list[str]:
    with reading(engine) as conn:
        return members(conn, person)


def effective_user(engine: Engine, person: str) -> Row | None:
    """The row that holds ``person``'s approval, block and quota (their linked person's)."""
    with reading(engine) as conn:
        return conn.execute(select(calc_users).where(
            calc_users.c.person == canonical(conn, person))).first()


def limit_of(settings: CalcSettings, user: Row | None, lineage: list[str] = ()) -> int:
    """A user's own quota, else that of their organisation or of its nearest ancestor that
    sets one (``lineage``: the organisation's label, then its ancestors'), else the site's."""
    if user is not None and user.quota is not None:
        return user.quota
    key = "approved_quota" if user is not None and user.approved else "quota"
    for label in lineage:
        own = settings.organisations.get(label, {})
        if key in own:
            return own[key]
    return getattr(settings, key)


def ensure_user(conn: Any, person: str, display_name: str | None, now: float) -> bool:
    """Make ``person`` a user (True: they are new)."""
    return conn.execute(insert_new(conn.engine, calc_users, person=person,
                                   display_name=display_name, approved=False, blocked=False,
                                   created_at=now, updated_at=now)).first() is not None


def register(engine: Engine, person: str, display_name: str | None,
             now: float | None = None) -> bool:
    with engine.begin() as conn:
        return ensure_user(conn, person, display_name, time.time() if now is None else now)


def set_user(engine: Engine, person: str, now: float | None = None, **values: Any) -> bool:
    """Change a user's approval, block or quota (False: no such user)."""
    now = time.time() if now is None else now
    with engine.begin() as conn:
        return bool(conn.execute(update(calc_users).where(calc_users.c.person == person)
                                 .values(updated_at=now, **values)).rowcount)


def users(engine: Engine, which: str = "", limit: int = 50) -> list[Row]:
    """Users: all, ``pending`` (not approved), ``blocked``, or those a text matches."""
    query = select(calc_users).order_by(calc_users.c.created_at).limit(limit)
    if which == "pending":
        query = query.where(calc_users.c.approved.is_(False), calc_users.c.blocked.is_(False))
    elif which == "blocked":
        query = query.where(calc_users.c.blocked.is_(True))
    elif which:
        pattern = f"%{which.lower()}%"
        query = query.where(func.lower(calc_users.c.person).like(pattern)
                            | func.lower(func.coalesce(calc_users.c.display_name, "")).like(
                                pattern))
    with reading(engine) as conn:
        return list(conn.execute(query))


def open_calculations(engine: Engine, person: str) -> list[int]:
    """The job ids of ``person``'s calculations still queued or running."""
    from chatops.db import jobs

    with reading(engine) as conn:
        return list(conn.execute(select(calculations.c.job_id).join(
            jobs, jobs.c.id == calculations.c.job_id).where(
            calculations.c.person.in_(members(conn, person)),
            jobs.c.state.in_(("queued", "running"))).order_by(calculations.c.job_id)).scalars())


def _quota(conn: Any, settings: CalcSettings, person: str, user: Row | None,
           now: float) -> Quota:
    start = window_start(settings, now)
    counted = (calculations.c.person.in_(members(conn, person)),
               calculations.c.counted.is_(True),
               calculations.c.created_at >= start)
    used, oldest = conn.execute(select(func.count(), func.min(calculations.c.created_at))
                                .where(*counted)).one()
    if not used:
        resets = None
    elif settings.quota_window == "30 days":
        resets = oldest + ROLLING
    else:
        resets = month_end(now)
    lineage = ([row.label for row in orgs.chain(conn, user.organisation)]
               or [user.organisation]) if user is not None and user.organisation else []
    return Quota(limit_of(settings, user, lineage), used, resets, settings.quota_window)


def quota(engine: Engine, settings: CalcSettings, person: str, now: float | None = None) -> Quota:
    now = time.time() if now is None else now
    with reading(engine) as conn:
        user = conn.execute(select(calc_users).where(
            calc_users.c.person == canonical(conn, person))).first()
        return _quota(conn, settings, person, user, now)


def take(engine: Engine, settings: CalcSettings, person: str, display_name: str | None, *,
         cluster: str, runner: str, file_name: str, input_bytes: int, args: list[str],
         now: float | None = None) -> Taken:
    """Take one unit of ``person``'s quota for a new calculation, atomically."""
    now = time.time() if now is None else now
    with engine.begin() as conn:
        registered = ensure_user(conn, person, display_name, now)
        mine = conn.execute(select(calc_users).where(calc_users.c.person == person)).first()
        if display_name and mine.display_name != display_name:  # (first named by an admin)
            conn.execute(update(calc_users).where(calc_users.c.person == person)
                         .values(display_name=display_name))
        # The person's row (theirs, or the one they are linked to) is locked: every identity
        # of one person takes its units one at a time.
        user = conn.execute(select(calc_users).where(
            calc_users.c.person == (mine.same_as or person)).with_for_update()).first()
        current = _quota(conn, settings, person, user, now)
        if user.blocked:
            return Taken(None, current, blocked=user.block_reason or "", registered=registered)
        if current.used >= current.limit:
            return Taken(None, current, registered=registered)
        row_id = conn.execute(calculations.insert().values(
            person=person, cluster=cluster, runner=runner, file_name=file_name,
            input_bytes=input_bytes, args=json.dumps(args), counted=True,
            created_at=now)).inserted_primary_key[0]
        used = Quota(current.limit, current.used + 1, current.resets_at or (
            now + ROLLING if settings.quota_window == "30 days" else month_end(now)),
            current.window)
        return Taken(row_id, used, registered=registered)


def attach_job(engine: Engine, calc_row: int, job_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(update(calculations).where(calculations.c.id == calc_row)
                     .values(job_id=job_id))


def forget(engine: Engine, calc_row: int) -> None:
    """A unit taken for a calculation that was never queued: it was never one."""
    with engine.begin() as conn:
        conn.execute(calculations.delete().where(calculations.c.id == calc_row,
                                                 calculations.c.job_id.is_(None)))


def refund(engine: Engine, job_id: int, reason: str) -> bool:
    """The calculation never reached Slurm: it stops counting (False: it was refunded before)."""
    with engine.begin() as conn:
        return bool(conn.execute(
            update(calculations).where(calculations.c.job_id == job_id,
                                       calculations.c.counted.is_(True))
            .values(counted=False, refund_reason=reason[:2000])).rowcount)


def of_row(engine: Engine, calc_row: int) -> Row | None:
    with reading(engine) as conn:
        return conn.execute(select(calculations).where(calculations.c.id == calc_row)).first()


def of_job(engine: Engine, job_id: int) -> Row | None:
    with reading(engine) as conn:
        return conn.execute(select(calculations).where(calculations.c.job_id == job_id)).first()


def record_end(engine: Engine, job_id: int, remote_dir: str | None, results: dict,
               now: float | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(update(calculations).where(calculations.c.job_id == job_id).values(
            remote_dir=remote_dir, results=json.dumps(results),
            ended_at=time.time() if now is None else now))


def set_remote_dir(engine: Engine, job_id: int, remote_dir: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(calculations).where(calculations.c.job_id == job_id)
                     .values(remote_dir=remote_dir))


def of_person(engine: Engine, person: str, limit: int = 10) -> list[Row]:
    with reading(engine) as conn:
        return list(conn.execute(select(calculations).where(
            calculations.c.person.in_(members(conn, person)),
            calculations.c.job_id.is_not(None))
                                 .order_by(calculations.c.id.desc()).limit(limit)))


def user(engine: Engine, person: str) -> Row | None:
    with reading(engine) as conn:
        return conn.execute(select(calc_users).where(calc_users.c.person == person)).first()


def remove_results(settings: Any, engine: Engine, job_id: int, *, dry_run: bool = False,
                   now: float | None = None) -> int:
    """Remove a calculation's result files kept here (retention); the bytes they held. Its
    record says when, so ``calc <id>`` can tell."""
    import shutil

    from chatops.calc.files import results_dir

    folder = results_dir(settings, job_id)
    if not folder.is_dir():
        return 0
    held = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    if dry_run:
        return held
    # Recorded first: from then on `calc <id>` says they were removed, never that they follow.
    row = of_job(engine, job_id)
    results = json.loads(row.results) if row is not None and row.results else {}
    results["removed_at"] = time.time() if now is None else now
    with engine.begin() as conn:
        conn.execute(update(calculations).where(calculations.c.job_id == job_id)
                     .values(results=json.dumps(results)))
    shutil.rmtree(folder, ignore_errors=True)
    return held


LINK_SECONDS = 600.0  # a `link` code works this long


def new_link_code(engine: Engine, person: str, now: float | None = None) -> str:
    import secrets

    now = time.time() if now is None else now
    code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(8))
    with engine.begin() as conn:
        conn.execute(calc_link_codes.delete().where(calc_link_codes.c.expires_at < now))
        conn.execute(calc_link_codes.insert().values(code=code, person=person,
                                                     expires_at=now + LINK_SECONDS))
    return code


def link_code_owner(engine: Engine, code: str, now: float | None = None) -> str | None:
    """Who made ``code`` (None: unknown or expired)."""
    now = time.time() if now is None else now
    with reading(engine) as conn:
        return conn.execute(select(calc_link_codes.c.person).where(
            calc_link_codes.c.code == code.upper(), calc_link_codes.c.expires_at >= now)
        ).scalar()


def redeem_link_code(engine: Engine, code: str, person: str, display_name: str | None,
                     now: float | None = None) -> str | None:
    """Make ``person`` one with whoever made ``code`` (if it is theirs to use); that person."""
    now = time.time() if now is None else now
    with engine.begin() as conn:
        row = conn.execute(calc_link_codes.delete().where(
            calc_link_codes.c.code == code.upper(), calc_link_codes.c.expires_at >= now,
            calc_link_codes.c.person != person).returning(calc_link_codes.c.person)).first()
        if row is None:
            return None
        ensure_user(conn, row.person, None, now)
        ensure_user(conn, person, display_name, now)
        target = canonical(conn, row.person)
        if target == canonical(conn, person):
            return target
        # this person, and everyone already linked to them, become the other's
        conn.execute(update(calc_users).where(calc_users.c.same_as == person)
                     .values(same_as=target, updated_at=now))
        conn.execute(update(calc_users).where(calc_users.c.person == person)
                     .values(same_as=target, updated_at=now))
        return target


def unlink(engine: Engine, person: str, now: float | None = None) -> bool:
    with engine.begin() as conn:
        return bool(conn.execute(update(calc_users).where(
            calc_users.c.person == person, calc_users.c.same_as.is_not(None))
            .values(same_as=None, updated_at=time.time() if now is None else now)).rowcount)


def keep_for_links(engine: Engine, job_id: int, until: float) -> None:
    """Keep the calculation's result files at least until ``until`` (a download link ends
    then): retention looks at ``links_until``."""
    row = of_job(engine, job_id)
    if row is None:
        return
    results = json.loads(row.results) if row.results else {}
    results["links_until"] = max(float(results.get("links_until") or 0), until)
    with engine.begin() as conn:
        conn.execute(update(calculations).where(calculations.c.job_id == job_id)
                     .values(results=json.dumps(results)))


def links_until(engine: Engine, job_id: int) -> float:
    """When the newest download link to the calculation's result files ends (0: none)."""
    row = of_job(engine, job_id)
    return float(json.loads(row.results or "{}").get("links_until") or 0) if row else 0.0
