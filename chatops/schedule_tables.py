"""The schedules' tables: each fire taken, and each schedule's state (``schedule_store.py``).

Part of the one schema of ``db.metadata``, created by the migrations in ``migrations/``.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Integer, String, Table, UniqueConstraint

from chatops.db import metadata

# Schedules (migration 0008). One row per fire a process took: the unique (namespace, schedule,
# fire_at) is what makes a fire happen once whatever the number of dispatchers.
# Outcomes: queued (a new job), joined (the same job was still queued), skipped (misfire: skip).
schedule_fires = Table(
    "schedule_fires", metadata,
    Column("id", Integer, primary_key=True),
    Column("namespace", String(100), nullable=False),
    Column("schedule", String(100), nullable=False),
    Column("fire_at", Float, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("job_id", Integer, ForeignKey("jobs.id"), index=True),
    Column("late_by", Float, nullable=False, default=0.0),  # seconds after fire_at it was taken
    Column("held_until", Float),  # a suppression held the job until then
    Column("worker", String(200)),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("namespace", "schedule", "fire_at", name="uq_schedule_fires_fire"),
)

# Per schedule: paused or not (by whom), and since when fires count as missed (``anchor_at``:
# when the schedule, or its trigger, first appeared, or was resumed).
schedule_states = Table(
    "schedule_states", metadata,
    Column("namespace", String(100), primary_key=True),
    Column("schedule", String(100), primary_key=True),
    Column("trigger", String(300), nullable=False),
    Column("anchor_at", Float, nullable=False),
    Column("paused_at", Float),
    Column("paused_by", String(200)),
)
