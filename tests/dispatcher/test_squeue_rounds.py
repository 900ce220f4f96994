"""Tracked Slurm jobs are polled together: runs that ask while a squeue is under way share the
next one, and each gets its own job's lines (on the live test cluster)."""

from __future__ import annotations

import os
import threading

import pytest

from chatops.config_loader import build_config
from chatops.slurm.client import SlurmClient
from dispatcher.squeue_rounds import SqueueRounds
from dispatcher.ssh import SSHPool
from tests.support.remote import cluster_env, cluster_settings
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # needs the test cluster

UNKNOWN = 99999999  # no such job: missing from the answer, as when asked alone


def test_runs_asking_at_once_share_one_squeue_and_get_their_own_jobs() -> None:
    config = build_config({}, {"test": cluster_settings(cluster_env())})
    pool = SSHPool(config.clusters, os.environ)
    connection = pool.connection("test")
    rounds = SqueueRounds()
    asked: list[list[str]] = []

    def runner(argv: list[str], timeout: float):
        if argv[0] == "squeue":
            asked.append(argv[argv.index("-j") + 1].split(","))
            if len(asked) == 1:  # the first round waits until the others are waiting
                wait_until(lambda: len(rounds._waiting) == 2, 10, "two more runs to ask")
        return connection.run(argv, timeout)

    client = SlurmClient(runner)
    held = [client.sbatch(wrap="true", options={
        "hold": True, "partition": "debug", "time": "1", "job-name": "chatops-rounds"}).job_id
        for _ in range(2)]
    try:
        answers: dict[int, list] = {}

        def ask(slurm_id: int) -> None:
            answers[slurm_id] = rounds.squeue(client, slurm_id)

        first = threading.Thread(target=ask, args=(held[0],))
        first.start()
        wait_until(lambda: asked, 10, "the first squeue")
        others = [threading.Thread(target=ask, args=(i,)) for i in (held[1], UNKNOWN)]
        for thread in others:
            thread.start()
        for thread in (first, *others):
            thread.join(30)
        assert asked == [[str(held[0])], [str(i) for i in sorted((held[1], UNKNOWN))]]
        for slurm_id in held:
            assert [(q.job_id, q.state) for q in answers[slurm_id]] == [
                (str(slurm_id), "PENDING")]
        assert answers[UNKNOWN] == []
    finally:
        for slurm_id in held:
            client.scancel(slurm_id)
        pool.close()
