"""The queue's hot path as plain SQL, run on the driver connection.

Enqueue, claim and finish run thousands of times a second; SQLAlchemy's statement machinery
costs more than SQLite takes to run them, so these few statements go straight to the driver
(inside a SQLAlchemy-managed transaction). Everything else in the queue uses SQLAlchemy Core.
Statements are written with ``:name`` parameters and rewritten for drivers that want
``%(name)s``.
"""

from __future__ import annotations

import re
from collections import namedtuple
from typing import Any

# Every enqueue runs it: positional parameters (``?``), as SQLite's driver binds a name at the
# cost of a new string and a lookup, fifteen times.
INSERT_JOB = """
INSERT INTO jobs (namespace, job_type, args, args_hash, state, concurrency, timeout,
                  created_at, start_after, platform, channel, thread, requested_by, message,
                  is_direct, cancel_requested)
VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (job_type, args_hash) WHERE state = 'queued' DO NOTHING
"""
# SQLite takes the new id from the cursor (lastrowid): RETURNING costs it as much again as the
# insert itself (≈10 µs). PostgreSQL's drivers have no lastrowid.
RETURNING_ID = "RETURNING id"
FIND_PENDING = """
SELECT id, start_after FROM jobs
WHERE job_type = :job_type AND args_hash = :args_hash AND state = 'queued'
"""
INSERT_SUBSCRIBER = """
INSERT INTO subscribers (job_id, platform, channel, thread, "user", message, is_direct,
                         created_at)
VALUES (:job_id, :platform, :channel, :thread, :user, :message, :is_direct, :now)
"""
COUNT_RUNNING = "SELECT count(*) FROM jobs WHERE job_type = :job_type AND state = 'running'"
# One job for ``:worker``: the first due one whose type is below its concurrency limit (0: no
# limit) and not suppressed. A batch claim runs it once per free slot in one transaction
# (Queue.claim_many): each run sees the jobs the ones before it took, so the limits hold
# within the batch too.
_DUE = """
FROM jobs j
WHERE j.state = 'queued' AND j.start_after <= :now
  AND (j.concurrency = 0
       OR (SELECT count(*) FROM jobs r
           WHERE r.job_type = j.job_type AND r.state = 'running') < j.concurrency)
  AND NOT EXISTS (SELECT 1 FROM suppressions s
                  WHERE s.job_type = j.job_type AND s.start_at <= :now AND s.end_at > :now)
ORDER BY j.start_after, j.id
LIMIT 1"""
CLAIMED_COLUMNS = ("id", "namespace", "job_type", "args", "timeout", "concurrency", "platform",
                   "channel", "thread", "requested_by")
_TAKE = "UPDATE jobs SET state = 'running', started_at = :now, claimed_by = :worker"
# SQLite (the write lock is held from BEGIN IMMEDIATE): pick, then take by id; cheaper than
# one UPDATE … RETURNING there. PostgreSQL: one statement, its rows locked and skipped.
CLAIM_PICK = f"SELECT {', '.join('j.' + c for c in CLAIMED_COLUMNS)} {_DUE}"
CLAIM_TAKE = f"{_TAKE} WHERE id = :id"
CLAIM = f"""{_TAKE}
WHERE id = (SELECT j.id {_DUE} {{lock}})
RETURNING {', '.join(CLAIMED_COLUMNS)}, started_at
"""
Claimed = namedtuple("Claimed", (*CLAIMED_COLUMNS, "started_at"))
RECORD_PROCESS = "UPDATE jobs SET pid = :pid, pid_start = :pid_start WHERE id = :job_id"
FINISH = """
UPDATE jobs SET state = :state, finished_at = :now, exit_code = :exit_code, summary = :summary,
                log_dir = COALESCE(:log_dir, log_dir)
WHERE id = :job_id AND state IN ({states})
"""
REPORT_TO_SUBSCRIBERS = """
INSERT INTO deliveries (job_id, platform, channel, thread, message, is_direct, payload, state,
                        attempts, next_attempt_at, created_at)
SELECT id, platform, channel, thread, message, is_direct, :body, 'pending', 0, :now, :now
FROM jobs WHERE id = :job_id
UNION ALL
SELECT job_id, platform, channel, thread, message, is_direct, :body, 'pending', 0, :now, :now
FROM subscribers WHERE job_id = :job_id
"""
_PARAM = re.compile(r"(?<![:\w]):(\w+)")
_row_types: dict[str, type] = {}  # statement -> its rows' named tuple


def for_driver(sql: str, paramstyle: str) -> str:
    """Rewrite ``:name`` (and ``?``) parameters for drivers with the ``pyformat`` style
    (psycopg)."""
    if paramstyle in ("named", "qmark"):  # sqlite3 takes :name with a dict, ? with a tuple
        return sql
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%")).replace("?", "%s")


def run(driver_connection: Any, sql: str, params: dict[str, Any] | tuple[Any, ...]) -> Any:
    """Execute on a driver (DB-API) connection that is in a transaction; the cursor."""
    return driver_connection.execute(sql, params)  # (sqlite3 and psycopg both have it)


def one(driver_connection: Any, sql: str, params: dict[str, Any]) -> Any:
    """The first row of ``sql`` as a named tuple (attribute access like SQLAlchemy's rows), or
    None. The tuple type is made once per statement."""
    cursor = driver_connection.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return None
    row_type = _row_types.get(sql)
    if row_type is None:
        row_type = _row_types[sql] = namedtuple("Row", [d[0] for d in cursor.description])
    return row_type(*row)
