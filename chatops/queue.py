"""Queue operations: enqueue, claim, finish, cancel, suppress — each one short transaction.

A claim takes as many due jobs as the dispatcher has free slots in one transaction that also
enforces the per-type concurrency limits and suppressions, so several dispatchers never run a
job twice; the jobs that ended in one turn of the dispatcher's loop are finished in one
transaction too. On SQLite writers take the write lock at BEGIN (IMMEDIATE) and readers never
do (``chatops.queue_tx`` holds the transactions); on PostgreSQL claims are serialised by a
transaction-level advisory lock, because counting the running jobs of a type is not safe under
READ COMMITTED otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from chatops import json_text, storage
from chatops import queue_sql as sql
from chatops.db import (
    args_digest,
    deliveries,
    dispatchers,
    jobs,
    slurm_submissions,
    storable_int,
    subscribers,
    suppressions,
)
from chatops.events import Requester
from chatops.job_end import merge_report
from chatops.params import args_problem
from chatops.queue_tx import Transactions
from chatops.redact import redact, redacted_json

_CLAIM_LOCK = 4242_0001  # advisory lock id for claims on PostgreSQL
STALE_AFTER_SECONDS = 30.0  # a dispatcher whose heartbeat is older than this is dead


class Finish(NamedTuple):
    """A job's end, as the dispatcher records it (with its report, if any)."""

    job_id: int
    state: str
    exit_code: int | None = None
    summary: str | None = None
    payload: Mapping[str, Any] | None = None
    log_dir: str | None = None
    only_from: tuple[str, ...] = ("queued", "running")


class Enqueued(NamedTuple):
    job_id: int
    joined: bool  # True when the request joined an equal pending job
    start_after: float
    running_ahead: int  # jobs of this type running now (the new one waits for them)


class ArgumentsTooLarge(ValueError):
    """A job's arguments exceed MAX_ARGS_BYTES (or hold a NUL); the message says so for the
    person who asked."""


NO_LIMIT = 0  # jobs.concurrency of a type without a per-type limit (Slurm batch: Slurm queues)


def stored_concurrency(limit: int | None) -> int:
    """A job type's concurrency as the jobs table keeps it (None: no limit)."""
    return NO_LIMIT if limit is None else limit


def canonical_args(args: Mapping[str, Any]) -> str:
    return json_text.canonical(args if type(args) is dict else dict(args))


class Queue:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._tx = Transactions(engine)
        style = engine.dialect.paramstyle
        lock = "FOR UPDATE SKIP LOCKED" if self.is_postgres else ""
        self._sql = {name: sql.for_driver(text_, style) for name, text_ in {
            "insert_job": sql.INSERT_JOB + (sql.RETURNING_ID if self.is_postgres else ""),
            "find_pending": sql.FIND_PENDING,
            "insert_subscriber": sql.INSERT_SUBSCRIBER, "count_running": sql.COUNT_RUNNING,
            "claim": sql.CLAIM.format(lock=lock), "claim_pick": sql.CLAIM_PICK,
            "claim_take": sql.CLAIM_TAKE, "record_process": sql.RECORD_PROCESS,
            "report": sql.REPORT_TO_SUBSCRIBERS}.items()}
        self._finish_sql: dict[tuple[str, ...], str] = {}
        folder = storage.database_folder(engine)  # SQLite: where free space is checked
        self._space = None if folder is None else storage.SpaceWatch(folder)

    def atomic(self) -> AbstractContextManager[Connection]:
        """One writing transaction for everything this thread does on the queue inside it
        (enqueue, add_delivery, … and the caller's own statements on the connection it
        yields): all of it is stored, or none of it."""
        return self._tx.atomic()

    def release_connection(self) -> None:
        """Give this thread's connection back to the pool: for threads that live long and use
        the queue only now and then (a Slurm job's tracker, a burst of submissions), so that
        many of them never exhaust the pool."""
        self._tx.release()

    # -- jobs -------------------------------------------------------------------------------

    def enqueue(self, job_type: str, args: Mapping[str, Any], requester: Requester, *,
                timeout: float, concurrency: int | None = 1, delay: float = 0,
                now: float | None = None, count_running: bool = True,
                personal: bool = False) -> Enqueued:
        """Queue a job, or join the pending one with the same type and args (and, when
        ``personal``, the same requester: a job that runs as its requester is theirs alone).

        Raises ArgumentsTooLarge above MAX_ARGS_BYTES, or with a NUL (callers check
        ``args_problem`` first to answer in their own words), and storage.NoRoom when the
        disk under a SQLite database is full.
        """
        problem = args_problem(args)
        if problem:
            raise ArgumentsTooLarge(problem)
        # A (nearly) full disk refuses new jobs, whoever asks: SQLite could still squeeze a
        # row into its log's free room, but the job could not write its output.
        low = None if self._space is None else self._space.low_space()
        if low is not None:
            raise storage.NoRoom(low)
        now = time.time() if now is None else now
        canonical = canonical_args(args)
        digest = args_digest(canonical + (f"\n{requester.qualified_user}" if personal else ""))
        start_after = now + delay
        with self._tx.hot() as conn:
            # The partial unique index on pending (type, args hash) decides: new row, or join.
            new = sql.run(conn, self._sql["insert_job"], (
                job_type.partition("_")[0], job_type, canonical, digest,
                stored_concurrency(concurrency), timeout, now, start_after, requester.platform,
                requester.channel, requester.thread, requester.user, requester.message,
                requester.is_direct, False))
            if self.is_postgres:
                row = new.fetchone()
                job_id = None if row is None else row[0]
            else:
                job_id = new.lastrowid if new.rowcount == 1 else None
            joined = job_id is None
            params = {"job_type": job_type, "args_hash": digest}
            if joined:  # the first requester lives on the job row; later ones subscribe
                job_id, start_after = sql.one(conn, self._sql["find_pending"], params)
                sql.run(conn, self._sql["insert_subscriber"], {
                    "job_id": job_id, "platform": requester.platform,
                    "channel": requester.channel, "thread": requester.thread,
                    "user": requester.user, "message": requester.message,
                    "is_direct": requester.is_direct, "now": now})
            running = (sql.run(conn, self._sql["count_running"], params).fetchone()[0]
                       if count_running else 0)
        return Enqueued(job_id, joined, start_after, running)

    def claim(self, worker: str, now: float | None = None) -> Any:
        """Take the next runnable job for ``worker``, or None."""
        rows = self.claim_many(worker, 1, now)
        return rows[0] if rows else None

    def claim_many(self, worker: str, slots: int, now: float | None = None) -> list[Any]:
        """Take up to ``slots`` runnable jobs for ``worker``, in start order, in one transaction.

        A job is runnable when it is due, its type is not suppressed now, and its type has no
        limit or fewer jobs of its type than its ``concurrency`` are running (counting those
        taken in this same claim).
        """
        now = time.time() if now is None else now
        taken: list[Any] = []
        if slots <= 0:
            return taken
        params = {"now": now, "worker": worker}
        with self._tx.hot() as conn:
            if self.is_postgres:
                sql.run(conn, "SELECT pg_advisory_xact_lock(%(k)s)", {"k": _CLAIM_LOCK})
            while len(taken) < slots:
                row = self._claim_one(conn, params)
                if row is None:
                    break
                taken.append(row)
        return taken

    def _claim_one(self, conn: Any, params: dict[str, Any]) -> sql.Claimed | None:
        if self.is_postgres:
            row = sql.run(conn, self._sql["claim"], params).fetchone()
            return None if row is None else sql.Claimed(*row)
        row = sql.run(conn, self._sql["claim_pick"], params).fetchone()
        if row is None:
            return None
        sql.run(conn, self._sql["claim_take"], {**params, "id": row[0]})
        return sql.Claimed(*row, params["now"])

    def finish(self, job_id: int, state: str, *, exit_code: int | None = None,
               summary: str | None = None, payload: Mapping[str, Any] | None = None,
               log_dir: str | None = None, only_from: tuple[str, ...] = ("queued", "running"),
               now: float | None = None) -> int:
        """Move a job to its end state and queue its report to every subscriber.

        Returns the number of reports queued (0 when the job had already ended).
        """
        return self.finish_many([Finish(job_id, state, exit_code, summary, payload, log_dir,
                                        only_from)], now=now)[0]

    def finish_many(self, finishes: list[Finish], *, processes: list[tuple[int, int, int]] = (),
                    now: float | None = None) -> list[int]:
        """Finish several jobs (and record started jobs' processes) in one transaction.

        ``processes`` are ``(job id, pid, kernel start time)`` of jobs just started. Returns,
        per finish, the number of reports queued: a job that had already ended gets none, so
        every report is queued exactly once.
        """
        now = time.time() if now is None else now
        queued = []
        with self._tx.hot() as conn:
            for job_id, pid, pid_start in processes:
                sql.run(conn, self._sql["record_process"],
                        {"job_id": job_id, "pid": pid, "pid_start": pid_start})
            for end in finishes:
                params = {"job_id": end.job_id, "state": end.state, "now": now,
                          "exit_code": end.exit_code,
                          "summary": redact(end.summary) if end.summary else end.summary,
                          "log_dir": end.log_dir}
                if not sql.run(conn, self._finish(end.only_from), params).rowcount or (
                        end.payload is None):
                    queued.append(0)
                    continue
                params["body"] = redacted_json(end.payload)
                queued.append(sql.run(conn, self._sql["report"], params).rowcount)
                if end.payload.get("details", {}).get("slurm_job_id"):  # see chatops.job_end
                    merge_report(lambda text, values, c=conn: sql.run(
                        c, sql.for_driver(text, self.engine.dialect.paramstyle), values),
                        end.job_id, dict(end.payload), now)
        return queued

    def _finish(self, only_from: tuple[str, ...]) -> str:
        finish = self._finish_sql.get(only_from)
        if finish is None:
            states = ", ".join(f"'{s}'" for s in only_from if s.isidentifier())
            finish = self._finish_sql[only_from] = sql.for_driver(
                sql.FINISH.format(states=states), self.engine.dialect.paramstyle)
        return finish

    def request_cancel(self, job_id: int, by: str | None = None) -> str | None:
        """Flag a running job for its dispatcher to kill; return the job's state (None: no job).

        ``by`` (who asked) is kept for the report. A queued job is ended by the caller with
        ``finish(..., only_from=("queued",))`` so that its report says who cancelled it.
        """
        with self._tx.begin() as conn:
            state = conn.execute(select(jobs.c.state).where(jobs.c.id == job_id)).scalar()
            if state == "running":
                conn.execute(update(jobs).where(jobs.c.id == job_id)
                             .values(cancel_requested=True, cancelled_by=by))
            return state

    def cancel_requested(self, worker: str) -> dict[int, str | None]:
        """The running jobs of ``worker`` someone asked to cancel: job id -> who asked."""
        with self._tx.read() as conn:
            return dict(conn.execute(select(jobs.c.id, jobs.c.cancelled_by).where(
                jobs.c.claimed_by == worker, jobs.c.state == "running",
                jobs.c.cancel_requested.is_(True))).all())

    def pending_of_type(self, job_type: str) -> list[int]:
        with self._tx.read() as conn:
            return list(conn.execute(select(jobs.c.id).where(
                jobs.c.job_type == job_type, jobs.c.state == "queued")).scalars())

    def get(self, job_id: int) -> Row | None:
        """The job, or None (also for numbers too big to be any job's id)."""
        if not storable_int(job_id):
            return None
        with self._tx.read() as conn:
            return conn.execute(select(jobs).where(jobs.c.id == job_id)).first()

    def jobs_in(self, states: tuple[str, ...]) -> list[Row]:
        with self._tx.read() as conn:
            return list(conn.execute(select(jobs).where(jobs.c.state.in_(states))
                                     .order_by(jobs.c.start_after, jobs.c.id)))

    def history(self, limit: int = 50, *, namespace: str | None = None,
                state: str | None = None, user: str | None = None) -> list[Row]:
        query = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        if namespace:
            query = query.where(jobs.c.namespace == namespace)
        if state:
            query = query.where(jobs.c.state == state)
        if user:
            query = query.where(jobs.c.requested_by == user)
        with self._tx.read() as conn:
            return list(conn.execute(query))

    def subscribers_of(self, job_id: int) -> list[Row]:
        """Everyone who asked for the job: its requester first, then those who joined."""
        with self._tx.read() as conn:
            first = conn.execute(select(
                jobs.c.id.label("job_id"), jobs.c.platform, jobs.c.channel, jobs.c.thread,
                jobs.c.requested_by.label("user"), jobs.c.message, jobs.c.is_direct,
                jobs.c.created_at).where(jobs.c.id == job_id)).first()
            rest = conn.execute(select(
                subscribers.c.job_id, subscribers.c.platform, subscribers.c.channel,
                subscribers.c.thread, subscribers.c.user, subscribers.c.message,
                subscribers.c.is_direct, subscribers.c.created_at)
                .where(subscribers.c.job_id == job_id).order_by(subscribers.c.id)).all()
        return ([first] if first else []) + list(rest)

    def next_start(self, now: float) -> float | None:
        """When the next queued job becomes due (or a suppression ends), for the dispatcher."""
        with self._tx.read() as conn:
            due = conn.execute(select(func.min(jobs.c.start_after))
                               .where(jobs.c.state == "queued", jobs.c.start_after > now)).scalar()
            ends = conn.execute(select(func.min(suppressions.c.end_at))
                                .where(suppressions.c.end_at > now)).scalar()
        times = [t for t in (due, ends) if t is not None]
        return min(times) if times else None

    # -- suppressions -----------------------------------------------------------------------

    def suppress(self, job_type: str, start_at: float, end_at: float, by: str,
                 now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._tx.begin() as conn:
            conn.execute(delete(suppressions).where(suppressions.c.end_at <= now))
            return conn.execute(insert(suppressions).values(
                job_type=job_type, start_at=start_at, end_at=end_at, created_by=by,
                created_at=now)).inserted_primary_key[0]

    def unsuppress(self, job_type: str) -> int:
        with self._tx.begin() as conn:
            return conn.execute(delete(suppressions)
                                .where(suppressions.c.job_type == job_type)).rowcount

    def suppressions(self, now: float | None = None) -> list[Row]:
        """Current and future suppressions (a read: expired ones go when one is added)."""
        now = time.time() if now is None else now
        with self._tx.read() as conn:
            return list(conn.execute(select(suppressions).where(suppressions.c.end_at > now)
                                     .order_by(suppressions.c.start_at)))

    # -- dispatchers ------------------------------------------------------------------------

    def register_dispatcher(self, worker: str, host: str, pid: int, now: float) -> None:
        with self._tx.begin() as conn:
            conn.execute(insert(dispatchers).values(id=worker, host=host, pid=pid,
                                                    started_at=now, heartbeat_at=now))

    def heartbeat(self, worker: str, now: float | None = None, stopped: bool = False) -> None:
        now = time.time() if now is None else now
        values: dict[str, Any] = {"heartbeat_at": now}
        if stopped:
            values["stopped_at"] = now
        with self._tx.begin() as conn:
            conn.execute(update(dispatchers).where(dispatchers.c.id == worker).values(**values))

    def slurm_jobs_of(self, job_ids: list[int]) -> dict[int, tuple[int, str]]:
        """job id -> (Slurm job id, cluster) for the jobs submitted to Slurm."""
        if not job_ids:
            return {}
        with self._tx.read() as conn:
            rows = conn.execute(select(slurm_submissions.c.job_id, slurm_submissions.c.slurm_job_id,
                                       slurm_submissions.c.cluster)
                                .where(slurm_submissions.c.job_id.in_(job_ids),
                                       slurm_submissions.c.slurm_job_id.is_not(None)))
            return {job_id: (slurm_id, cluster) for job_id, slurm_id, cluster in rows}

    def slurm_submission(self, job_id: int) -> Row | None:
        """The submission record of a Slurm batch job (None for any other job)."""
        with self._tx.read() as conn:
            return conn.execute(select(slurm_submissions)
                                .where(slurm_submissions.c.job_id == job_id)).first()

    def dispatchers(self) -> list[Row]:
        with self._tx.read() as conn:
            return list(conn.execute(select(dispatchers).where(dispatchers.c.stopped_at.is_(None))
                                     .order_by(dispatchers.c.heartbeat_at.desc())))

    def dispatcher_alive(self, now: float | None = None) -> bool:
        """Whether some dispatcher's heartbeat is recent."""
        now = time.time() if now is None else now
        return any(d.heartbeat_at > now - STALE_AFTER_SECONDS for d in self.dispatchers())

    def orphaned_jobs(self, dead_workers: list[str]) -> list[Row]:
        """Running jobs of dead dispatchers, and those a stopping dispatcher handed over."""
        whose = jobs.c.claimed_by.is_(None)
        if dead_workers:
            whose = or_(whose, jobs.c.claimed_by.in_(dead_workers))
        with self._tx.read() as conn:
            return list(conn.execute(select(jobs).where(jobs.c.state == "running", whose)))

    def adopt(self, job_id: int, from_worker: str | None, worker: str) -> bool:
        """Take over a running job from a dead (or stopped) dispatcher; False if another did."""
        whose = (jobs.c.claimed_by.is_(None) if from_worker is None
                 else jobs.c.claimed_by == from_worker)
        with self._tx.begin() as conn:
            return conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == "running",
                                                   whose)
                                .values(claimed_by=worker)).rowcount == 1

    def release(self, job_id: int, worker: str) -> None:
        """Leave a running job for the next dispatcher to adopt (a Slurm job still running)."""
        with self._tx.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.claimed_by == worker)
                         .values(claimed_by=None))

    def retire_dispatchers(self, workers: list[str], now: float) -> None:
        with self._tx.begin() as conn:
            conn.execute(update(dispatchers).where(dispatchers.c.id.in_(workers))
                         .values(stopped_at=now))

    # -- deliveries -------------------------------------------------------------------------

    def add_delivery(self, platform: str, payload: Mapping[str, Any], *, channel: str | None,
                     thread: str | None = None, message: str | None = None,
                     is_direct: bool = False, job_id: int | None = None,
                     now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._tx.begin() as conn:
            return conn.execute(insert(deliveries).values(
                job_id=job_id, platform=platform, channel=channel, thread=thread,
                message=message, is_direct=is_direct, payload=redacted_json(payload),
                state="pending", attempts=0, next_attempt_at=now, created_at=now,
            )).inserted_primary_key[0]

    def take_channel_deliveries(self, platform: str, channel: str) -> list[Row]:
        """Pending deliveries for one channel, marked delivered (the console reads them)."""
        now = time.time()
        waiting = (deliveries.c.platform == platform, deliveries.c.channel == channel,
                   deliveries.c.state == "pending")
        with self._tx.read() as conn:  # mostly nothing: then never wait for the write lock
            if conn.execute(select(deliveries.c.id).where(*waiting).limit(1)).first() is None:
                return []
        with self._tx.begin() as conn:
            rows = list(conn.execute(select(deliveries).where(*waiting)
                                     .order_by(deliveries.c.id)))
            if rows:
                conn.execute(update(deliveries)
                             .where(deliveries.c.id.in_([r.id for r in rows]))
                             .values(state="delivered", delivered_at=now, attempts=1))
            return rows
