"""Delta coding of ``job`` records: the producer's coder and the consumer's rebuilder.

The rules (``docs/telemetry.md`` says them for sites):

1. A job step is identified by ``(job_id, job_step)``.
2. While a step is PENDING or RUNNING its record carries no accounting figures (the ``sacct``
   object keeps only ``AllocTRES``): they grow every second and come with the final state.
3. The first record of a step in a daemon's life is *full* (every field).
4. Later records are *deltas*: the identity (``job_id``, ``job_step``, ``job_name``,
   ``job_state``) and the fields whose value changed, the ``sacct`` object with its changed
   members only. A field that disappeared (a value became unset) makes the record full instead,
   so a delta only ever sets fields.
5. A step whose record has not changed is not sent at all.
6. A step is sent full again when ``full_record_every`` cadences have passed since its last
   full record, changed or not, so a receiver that started late, or lost a message, recovers.
7. Full and delta records travel in separate envelopes, marked in ``meta.attrs`` with
   ``job-records`` = ``full`` or ``delta``; every pass sends at least one full envelope, empty
   when there is nothing new (the heartbeat). A step not seen in a pass is forgotten: if it comes
   back, its first record is full again.

A receiver applies records in order (one Kafka partition per key keeps it): a full record
replaces the state of its step, a delta updates the fields it carries. A delta for a step it has
no full record for is kept, marked partial, until the next full record.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dispatcher.telemetry.jobs import OPEN_STATES

IDENTITY = ("job_id", "job_step", "job_name", "job_state")
RECORDS_ATTR = "job-records"  # meta.attrs key: "full" or "delta"

Key = tuple[int, str]


def key_of(record: dict[str, Any]) -> Key:
    return record["job_id"], record.get("job_step", "")


def pertinent(record: dict[str, Any]) -> dict[str, Any]:
    """Rule 2: an open step's record without its growing accounting figures."""
    if record.get("job_state") not in OPEN_STATES or "sacct" not in record:
        return record
    record = dict(record)
    alloc = record["sacct"].get("AllocTRES")
    if alloc:
        record["sacct"] = {"AllocTRES": alloc}
    else:
        del record["sacct"]
    return record


def _changes(before: dict[str, Any], now: dict[str, Any]) -> dict[str, Any] | None:
    """The members of ``now`` that differ from ``before``; None if one disappeared."""
    if any(k not in now for k in before):
        return None
    changed = {}
    for k, value in now.items():
        if k == "sacct" and isinstance(before.get(k), dict):
            inner = _changes(before[k], value)
            if inner is None:
                return None
            if inner:
                changed[k] = inner
        elif before.get(k) != value:
            changed[k] = value
    return changed


class DeltaCoder:
    """The producer's side: what it last sent for each step, and how long ago in full."""

    def __init__(self, full_record_every: int):
        self.full_record_every = full_record_every
        self._sent: dict[Key, tuple[dict[str, Any], int]] = {}  # key -> (state, passes since full)

    def encode(self, records: Iterable[dict[str, Any]]
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """One pass: (full records, delta records) to send."""
        full, deltas, sent = [], [], {}
        for record in records:
            record = pertinent(record)
            key = key_of(record)
            previous = self._sent.get(key)
            if previous is None or previous[1] + 1 >= self.full_record_every:
                full.append(record)
                sent[key] = (record, 0)
                continue
            before, age = previous
            changes = _changes(before, record)
            if changes is None:
                full.append(record)
                sent[key] = (record, 0)
            elif changes:
                identity = {k: record[k] for k in IDENTITY if k in record}
                deltas.append({**identity, **changes})
                sent[key] = (record, age + 1)
            else:
                sent[key] = (before, age + 1)
        self._sent = sent
        return full, deltas


@dataclass
class JobState:
    record: dict[str, Any]
    partial: bool  # built from deltas without their full record


class JobRebuilder:
    """The consumer's side: the full state of every step, rebuilt from full and delta records."""

    def __init__(self) -> None:
        self.steps: dict[Key, JobState] = {}

    def apply(self, envelope: dict[str, Any]) -> list[Key]:
        """Apply one ``job`` envelope; the steps it touched. Envelopes without the marker (a
        daemon without delta coding, or Sonar) hold full records."""
        data = envelope.get("data") or {}
        attrs = {a.get("key"): a.get("value") for a in envelope.get("meta", {}).get("attrs", [])}
        delta = attrs.get(RECORDS_ATTR) == "delta"
        touched = []
        for record in data.get("attributes", {}).get("slurm_jobs", []):
            key = key_of(record)
            state = self.steps.get(key)
            if not delta:
                self.steps[key] = JobState(copy.deepcopy(record), partial=False)
            elif state is None:
                self.steps[key] = JobState(copy.deepcopy(record), partial=True)
            else:
                for k, value in record.items():
                    if k == "sacct" and isinstance(state.record.get(k), dict):
                        state.record[k].update(value)
                    else:
                        state.record[k] = copy.deepcopy(value)
            touched.append(key)
        return touched
