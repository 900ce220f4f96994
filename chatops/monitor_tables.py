"""The cluster monitor's tables: leases, states, transitions, boards and the telemetry feed's
latest snapshot of each cluster (``monitor_store.py`` reads and writes them).

Part of the one schema of ``db.metadata``, created by the migrations in ``migrations/``.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text

from chatops.db import metadata

# The cluster monitor (migration 0011). One poller per cluster, whatever the number of
# dispatchers: whoever holds the cluster's lease (until ``expires_at``) polls it.
monitor_leases = Table(
    "monitor_leases", metadata,
    Column("cluster", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("taken_at", Float, nullable=False),
)

# Per cluster: the latest poll and the state it is in (since when; the snapshot as JSON).
monitor_states = Table(
    "monitor_states", metadata,
    Column("cluster", String(100), primary_key=True),
    Column("state", String(20), nullable=False),  # online | degraded | offline
    Column("since", Float, nullable=False),
    Column("snapshot", Text, nullable=False),  # chatops.cluster_status.Snapshot as JSON
    Column("failures", Integer, nullable=False, default=0),  # failed polls in a row
    Column("last_error", Text),
    Column("polled_at", Float, nullable=False),
    Column("poll_seconds", Float),  # how long the latest poll took
    Column("polled_by", String(200)),
    Column("first_polled_at", Float, nullable=False),
)

# History: every change of a cluster's state (node NULL) or of a node's problem (state "ok"
# when it has none any more), with the reason.
monitor_transitions = Table(
    "monitor_transitions", metadata,
    Column("id", Integer, primary_key=True),
    Column("cluster", String(100), nullable=False),
    Column("node", String(200)),
    Column("from_state", String(40)),
    Column("to_state", String(40), nullable=False),
    Column("reason", Text),
    Column("at", Float, nullable=False),
    Index("ix_monitor_transitions_cluster_at", "cluster", "at"),
)

# The status board message of each (cluster, target): the delivery that posted it.
monitor_boards = Table(
    "monitor_boards", metadata,
    Column("cluster", String(100), primary_key=True),
    Column("target", String(300), primary_key=True),
    Column("delivery_id", Integer),
    Column("posted_at", Float, nullable=False),
)


# What the telemetry feed last heard of a cluster (migration 0012): a monitor whose source is
# Kafka reads it, whichever dispatcher's consumer took the topic's partition.
telemetry_clusters = Table(
    "telemetry_clusters", metadata,
    Column("cluster", String(100), primary_key=True),
    Column("received_at", Float, nullable=False),
    Column("snapshot", Text, nullable=False),
)
