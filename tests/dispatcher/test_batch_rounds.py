"""Tracked Slurm jobs of different people are never polled in one squeue: a site with
PrivateData=jobs shows each person only their own jobs, so one person's squeue must not answer
for another's (their job would look gone, and be reported ended while it runs)."""

from __future__ import annotations

import threading

from chatops.slurm.client import CommandResult, SlurmClient
from dispatcher.batch import BatchExecutor
from tests.support.wait import wait_until


def test_runs_of_different_people_on_one_connection_never_share_a_squeue() -> None:
    executor = BatchExecutor(None, None, None)  # type: ignore[arg-type]  # rounds need none
    connection = object()  # one cluster connection, shared by both people's runs
    asked: list[tuple[str, list[str]]] = []
    release = threading.Event()

    def client_of(person: str) -> SlurmClient:
        def runner(argv: list[str], timeout: float) -> CommandResult:
            asked.append((person, argv[argv.index("-j") + 1].split(",")))
            release.wait(10)  # every run is asking before any answer comes
            return CommandResult(0, "", "")
        return SlurmClient(runner)

    jobs = {"chatops-alice": [101, 102], "chatops-bob": [201]}
    threads = [threading.Thread(target=executor.rounds(connection, person).squeue,  # type: ignore[arg-type]
                                args=(client_of(person), job_id))
               for person, ids in jobs.items() for job_id in ids]
    for thread in threads:
        thread.start()
    wait_until(lambda: {person for person, _ in asked} == set(jobs), 10,
               "both people's squeue")
    release.set()
    for thread in threads:
        thread.join(10)
    for person, ids in asked:
        assert {int(i) for i in ids} <= set(jobs[person]), (person, ids)
    assert {int(i) for _, ids in asked for i in ids} == {101, 102, 201}
