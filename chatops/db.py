"""The queue database: tables and the engine.

Times are stored as UNIX seconds (floats) so that both SQLite and PostgreSQL compare them as
numbers. The schema itself is created by the Alembic migrations in ``migrations/``; the tables
here describe it for queries and must stay in step with them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    text,
)

from chatops.sqlite_engine import sqlite_engine

metadata = MetaData()
READ_ONLY = "chatops_read_only"  # execution option: begin this transaction deferred (SQLite)

# Job states: queued -> running -> succeeded | failed | cancelled | timed_out | lost.
# A queued job can also go straight to cancelled.
END_STATES = ("succeeded", "failed", "cancelled", "timed_out", "lost")
JOB_STATES = ("queued", "running", *END_STATES)
# No row id (nor any integer we store) is above this on either database: SQLite's INTEGER and
# PostgreSQL's bigint are 64-bit. Bigger numbers typed by people are not ids of anything, and
# the drivers refuse to bind them (OverflowError), so they are answered before any query.
MAX_STORED_INT = 2**63 - 1


def storable_int(value: int) -> bool:
    """Whether ``value`` fits every integer column (so it may be compared with one)."""
    return -MAX_STORED_INT - 1 <= value <= MAX_STORED_INT


def args_digest(canonical_args: str) -> str:
    """The dedupe key of a job's arguments (their canonical JSON): SHA-256, hex.

    Indexed instead of the arguments themselves, whose length PostgreSQL's btree would limit.
    """
    return hashlib.sha256(canonical_args.encode("utf-8")).hexdigest()


def _args_digest_default(context) -> str:
    return args_digest(context.get_current_parameters()["args"])


jobs = Table(
    "jobs", metadata,
    Column("id", Integer, primary_key=True),
    Column("namespace", String(100), nullable=False),
    Column("job_type", String(200), nullable=False),
    Column("args", Text, nullable=False, default="{}"),  # canonical JSON
    # args_digest(args): the dedupe key (migration 0010), computed on every insert.
    Column("args_hash", String(64), default=_args_digest_default),
    Column("state", String(20), nullable=False, default="queued"),
    Column("concurrency", Integer, nullable=False, default=1),
    Column("timeout", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("start_after", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("platform", String(40)),
    Column("channel", String(200)),
    Column("thread", String(200)),
    Column("requested_by", String(200)),
    Column("message", String(200)),
    Column("is_direct", Boolean, nullable=False, default=False),
    Column("claimed_by", String(200)),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("cancelled_by", String(300)),  # who asked to cancel it (migration 0007)
    Column("exit_code", Integer),
    Column("log_dir", Text),
    Column("summary", Text),
    Column("delivery_error", Text),
    # The job's local process (migration 0009): a dispatcher that finds this job orphaned
    # kills its process group if the process with this pid still has this kernel start time.
    Column("pid", Integer),
    Column("pid_start", BigInteger),
    # Partial indexes (see migration 0001): finished jobs cost no index maintenance.
    Index("ix_jobs_queued", "start_after", "id", sqlite_where=text("state = 'queued'"),
          postgresql_where=text("state = 'queued'")),
    Index("ix_jobs_running", "job_type", sqlite_where=text("state = 'running'"),
          postgresql_where=text("state = 'running'")),
    # One pending job per (type, args): a second request joins it instead of queueing again.
    Index("ux_jobs_pending", "job_type", "args_hash", unique=True,
          sqlite_where=text("state = 'queued'"), postgresql_where=text("state = 'queued'")),
)

# Who else asked for a pending job (the first requester is on the job row itself).
subscribers = Table(
    "subscribers", metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False, index=True),
    Column("platform", String(40), nullable=False),
    Column("channel", String(200)),
    Column("thread", String(200)),
    Column("user", String(200)),
    Column("message", String(200)),
    Column("is_direct", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
)

suppressions = Table(
    "suppressions", metadata,
    Column("id", Integer, primary_key=True),
    Column("job_type", String(200), nullable=False, index=True),
    Column("start_at", Float, nullable=False),
    Column("end_at", Float, nullable=False),
    Column("created_by", String(200)),
    Column("created_at", Float, nullable=False),
)

deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), index=True),
    Column("platform", String(40), nullable=False),
    Column("channel", String(200)),
    Column("thread", String(200)),
    Column("message", String(200)),
    Column("is_direct", Boolean, nullable=False, default=False),
    Column("payload", Text, nullable=False),
    Column("state", String(20), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("delivered_at", Float),
    # JSON: the steps of a multi-part delivery already done (migration 0005)
    Column("progress", Text),
    # A Slurm notification's event and cluster user: the per-user cap counts them (0013)
    Column("event_id", String(100)),
    Column("cluster_user", String(100)),
    # Edits of a message that changes (live progress): a send is "delivered" only if no
    # newer text came meanwhile (0013).
    Column("revision", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_deliveries_pending", "platform", "state", "next_attempt_at"),
    # Only Slurm notifications have a cluster user (the per-user cap counts them); partial
    # (0015), so a job's report writes no page of it.
    Index("ix_deliveries_user", "cluster_user", "created_at",
          sqlite_where=text("cluster_user IS NOT NULL"),
          postgresql_where=text("cluster_user IS NOT NULL")),
)

dispatchers = Table(
    "dispatchers", metadata,
    Column("id", String(200), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("stopped_at", Float),
)

# A person on a chat platform, later bound to a cluster user.
identities = Table(
    "identities", metadata,
    Column("id", Integer, primary_key=True),
    Column("platform", String(40), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("display_name", String(200)),
    Column("cluster_user", String(100), index=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("platform", "user_id", name="uq_identities_platform_user"),
)

# A chat that asked for Slurm notifications (Telegram /start, Discord /mailuser, ...).
notification_targets = Table(
    "notification_targets", metadata,
    Column("id", Integer, primary_key=True),
    Column("connector", String(40), nullable=False),
    Column("target", String(300), nullable=False),
    Column("user_id", String(200)),
    Column("cluster_user", String(100)),
    Column("opted_in_at", Float, nullable=False),
    Column("opted_out_at", Float),  # set when withdrawn (/stop)
    UniqueConstraint("connector", "target", name="uq_targets_connector_target"),
)

# X-GitHub-Delivery ids already handled: a redelivery schedules nothing twice.
webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("delivery_id", String(100), primary_key=True),
    Column("namespace", String(100), nullable=False),
    Column("event", String(100), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("outcome", String(40), nullable=False),
    Column("job_id", Integer, ForeignKey("jobs.id")),
)

# A Slurm batch job's submission, recorded *before* sbatch is sent (submit_state "submitting"),
# then "submitted" with Slurm's id, "rejected" (no id came back) or "unknown" (the answer was
# lost), and "ended". One row per chat job: a job is never submitted twice.
slurm_submissions = Table(
    "slurm_submissions", metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("cluster", String(100), nullable=False),
    Column("submit_state", String(20), nullable=False),
    Column("slurm_job_id", Integer),
    Column("script_path", Text),
    Column("output_path", Text),
    Column("slurm_state", String(40)),
    Column("exit_code", Integer),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("submitted_at", Float),
    Column("ended_at", Float),
    # The person's cluster account it was submitted as (migration 0016); None: the
    # cluster's own user.
    Column("run_as", String(100)),
    UniqueConstraint("job_id", name="uq_slurm_submissions_job"),
    Index("ix_slurm_submissions_slurm_job", "cluster", "slurm_job_id"),
)


# Slurm events seen (migration 0004); their notifications are rows of ``deliveries``.
notify_events = Table(
    "notify_events",
    metadata,
    Column("event_id", String(100), primary_key=True),
    Column("received_at", Float, nullable=False),
    Column("cluster", String(100)),
    Column("slurm_job_id", String(40)),
    Column("cluster_user", String(100)),
    Column("mail_type", String(40)),
    Column("targets", Integer, nullable=False, default=0),
)


# Every running process of the service and the job_configs.py it runs (live config).
processes = Table(
    "processes", metadata,
    Column("id", String(200), primary_key=True),
    Column("role", String(40), nullable=False),  # run, web, dispatcher, bot <platform>
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("seen_at", Float, nullable=False),
    Column("config_hash", String(64), nullable=False),
    Column("config_loaded_at", Float, nullable=False),
    Column("rejected_hash", String(64)),  # the file on disk, when it has errors
    Column("stopped_at", Float),
)

# Edits of job_configs.py that had errors: the process that records one first tells the admins.
config_rejections = Table(
    "config_rejections", metadata,
    Column("config_hash", String(64), primary_key=True),
    Column("errors", Text, nullable=False),
    Column("seen_at", Float, nullable=False),
    Column("seen_by", String(200), nullable=False),
)


def insert_new(engine: Engine, table: Table, **values):
    """INSERT … ON CONFLICT DO NOTHING RETURNING the primary key: None when the row existed
    (another process inserted it first)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return (dialect.insert(table).values(**values).on_conflict_do_nothing()
            .returning(*table.primary_key.columns))


def make_engine(url: str) -> Engine:
    """An engine with the settings a queue needs: WAL, a busy timeout, serialised writers."""
    if url.startswith("sqlite"):
        return sqlite_engine(url, READ_ONLY)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=10)


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction: on SQLite a deferred ``BEGIN``, so it never waits for (nor
    blocks) the dispatcher's writes. Everything else opened on the engine is taken as a writer."""
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        with conn.begin():
            yield conn


# Calculations from chat (migration 0014; chatops/calc/). One row per calculation, written
# when its quota unit is taken (``counted``) and before its job is queued; ``job_id`` is the
# calculation's number for its user. A calculation that never reached Slurm is refunded
# (``counted`` false, ``refund_reason`` says why).
calculations = Table(
    "calculations", metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), unique=True),
    Column("person", String(200), nullable=False),  # platform:id
    Column("cluster", String(100), nullable=False),
    Column("runner", String(100), nullable=False),
    Column("file_name", String(300), nullable=False),
    Column("input_bytes", BigInteger, nullable=False),
    Column("args", Text, nullable=False),  # JSON list, as given to the program
    Column("counted", Boolean, nullable=False),
    Column("refund_reason", Text),
    Column("remote_dir", Text),
    Column("results", Text),  # JSON: the files sent back, and those left on the cluster
    Column("created_at", Float, nullable=False),
    Column("ended_at", Float),
    Index("ix_calculations_person", "person", "created_at"),
)

# A person who ran calculations: approval, a block, their own quota (None: the site's).
calc_users = Table(
    "calc_users", metadata,
    Column("person", String(200), primary_key=True),
    Column("display_name", String(200)),
    Column("approved", Boolean, nullable=False),
    Column("approved_by", String(200)),
    Column("blocked", Boolean, nullable=False),
    Column("block_reason", Text),
    Column("quota", Integer),
    Column("profile", Text),  # what `profile` (Telegram: /upd) set: first name, last name, org
    # Linked (`link`) to this person: one person on several platforms, whose row holds the
    # approval, block, quota and profile, and whose quota all of them share.
    Column("same_as", String(200), index=True),
    Column("organisation", String(100)),  # the label its profile named (organizations)
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Organisations users name in their profile: a tree (``parent`` is a label), loaded with
# `chatops orgs import organizations.csv` (HPC_bot's columns: label, name, alias, parent).
organizations = Table(
    "organizations", metadata,
    Column("label", String(100), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("alias", String(100)),
    Column("parent", String(100)),
)

# `link` codes: sent from another platform before ``expires_at``, they make both one person.
calc_link_codes = Table(
    "calc_link_codes", metadata,
    Column("code", String(20), primary_key=True),
    Column("person", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
)

# Everything that happened to calculations and their users, newest last (chatops/calc/audit.py).
audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False, index=True),
    Column("actor", String(200)),  # platform:id of who did it (None: the service)
    Column("action", String(40), nullable=False),
    Column("subject", String(200)),  # the person it concerns
    Column("calc_id", Integer),
    Column("detail", Text, nullable=False),  # the message, as the audit channel got it
)
