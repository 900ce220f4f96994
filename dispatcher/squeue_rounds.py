"""One ``squeue`` for many tracked Slurm jobs: the batch runs of a cluster connection ask
together.

Each batch run polls its job's state. A hundred jobs polled one by one is a hundred SSH commands
(each an sshd session and a slurmctld request) every round, on the cores the next submissions
need. Here a run that asks while another's ``squeue`` is under way waits for the next round,
which one of the waiting runs makes for all of them (``squeue -j a,b,c``); each gets its own
job's lines. An id slurmctld no longer knows is missing from the answer, as when asked alone.
"""

from __future__ import annotations

import re
import threading

from chatops.slurm.client import QueuedJob, SlurmClient

_OWN_ID = re.compile(r"[_+]")  # "7_1" (an array task), "9+0" (a heterogeneous part)


class SqueueRounds:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: set[int] = set()
        self._answers: dict[int, list[QueuedJob] | Exception] = {}
        self._asking = False  # a round is under way

    def squeue(self, client: SlurmClient, slurm_id: int) -> list[QueuedJob]:
        """``client.squeue([slurm_id])``, made in a round with the others waiting."""
        with self._changed:
            self._waiting.add(slurm_id)
            while slurm_id not in self._answers and self._asking:
                self._changed.wait()
            if slurm_id not in self._answers:  # no round under way: this one makes it
                self._asking = True
                ids = sorted(self._waiting)
                self._waiting.clear()
            else:
                ids = []
        if ids:
            try:
                found: list[QueuedJob] | Exception = client.squeue(ids)
            except Exception as exc:  # every run of the round sees it, as if asked alone
                found = exc
            with self._changed:
                for job_id in ids:
                    self._answers[job_id] = found if isinstance(found, Exception) else [
                        job for job in found if _OWN_ID.split(job.job_id)[0] == str(job_id)]
                self._asking = False
                self._changed.notify_all()
        with self._changed:
            answer = self._answers.pop(slurm_id)
        if isinstance(answer, Exception):
            raise answer
        return answer
