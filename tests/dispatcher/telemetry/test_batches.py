"""Job records are split into envelopes a broker takes: at most ``batch-size`` records and, in
any case, well under Kafka's 1 MB message limit, however many jobs the window holds."""

from __future__ import annotations

import json

from dispatcher.telemetry.jobs import MAX_RECORDS_BYTES, batches


def record(job_id: int) -> dict:
    return {"job_id": job_id, "job_name": "x" * 400, "job_state": "COMPLETED"}


def test_many_records_are_split_by_size_all_kept_in_order() -> None:
    records = [record(n) for n in range(5000)]  # about 2.3 MB of JSON
    runs = batches(records, None)
    assert len(runs) >= 3
    assert all(len(json.dumps(run, separators=(",", ":"))) <= MAX_RECORDS_BYTES + 2
               for run in runs)
    assert [r["job_id"] for run in runs for r in run] == list(range(5000))


def test_a_batch_size_still_applies_and_few_records_make_one_envelope() -> None:
    assert [len(run) for run in batches([record(n) for n in range(5)], 2)] == [2, 2, 1]
    assert batches([record(1)], None) == [[record(1)]]
    assert batches([], None) == [[]]  # the heartbeat: one empty envelope
