"""Statistics and hints for a finished Slurm job (behaviours §2.4), from ``sacct``.

Accounting lags slurmctld by a few seconds: sacct is polled, with short timeouts, until the job
line is final (not slurmdbd's provisional stand-in) or ``stats_wait`` runs out — no fixed sleep.
A cancelled job gets no statistics, only the signal that stopped it (waited for within the
same budget). Any failure here yields no statistics, never a lost notification.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from chatops.notify.config import NotifyConfig
from chatops.slurm.acct import AcctJob, job_efficiency
from chatops.slurm.client import SlurmClient
from chatops.slurm.events import SlurmEvent
from chatops.texts import duration, percent, size

log = logging.getLogger("chatops.notify")

STATS_STATES = {"COMPLETED", "FAILED", "OUT_OF_MEMORY", "TIMEOUT"}
FINAL_STATES = STATS_STATES | {"CANCELLED", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


def best_qos(runtime: float, qos: dict[str, float] | Any) -> str | None:
    """The QoS with the smallest limit that still fits ``runtime`` (0 fits the smallest)."""
    fitting = [(limit, name) for name, limit in qos.items() if limit >= max(runtime, 0)]
    return min(fitting)[1] if fitting else None


def _fetch(client: SlurmClient, job_id: str, wait: bool, budget: float,
           clock_fn: Callable[[], float],
           enough: Callable[[AcctJob], bool] = lambda job: True) -> AcctJob | None:
    deadline = clock_fn() + budget
    pause = 0.2
    while True:
        try:
            jobs = [j for j in client.sacct_jobs([job_id]) if j.job.job_id == job_id
                    or str(j.job.raw_id) == job_id]
        except Exception as exc:  # a statistics failure never stops the notification
            log.warning("sacct for job %s failed: %s", job_id, exc)
            return None
        job = jobs[0] if jobs else None
        ready = (job is not None and not job.job.provisional and job.job.state in FINAL_STATES
                 and enough(job))
        if ready or not wait or clock_fn() + pause > deadline:
            return job if job is not None and not job.job.provisional else None
        time.sleep(pause)  # bounded by the deadline; short because sacct is usually 1-3 s late
        pause = min(pause * 1.5, 1.0)


def gather(event: SlurmEvent, client: SlurmClient | None, cfg: NotifyConfig,
           clock_fn: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """``{"stats": {...} | None, "hints": [...], "signal": N, "started": bool}`` for an
    END/FAIL event (the last two when sacct knew them); empty otherwise."""
    none: dict[str, Any] = {"stats": None, "hints": []}
    if client is None or not event.finished or event.array_summary or event.job_id is None:
        return none
    cancelled = (event.state or "").startswith("CANCELLED")
    if cancelled and event.run_time_seconds == 0 and not event.nodes:
        return none  # cancelled while pending: nothing ran, nothing to look up
    # A cancelled job: no statistics, only the signal that stopped it, which sacct records on
    # the batch step a moment after the job's own line (waited for within stats_wait).
    job = _fetch(client, str(event.job_id), True, cfg.stats_wait, clock_fn,
                 (lambda j: j.signal is not None) if cancelled else (lambda j: True))
    if job is None:
        return none
    ending = {"signal": job.signal, "started": job.started}
    if cancelled:
        return {**none, **ending}
    eff = job_efficiency(job)
    head = job.job
    stats = {
        "state": head.state, "elapsed": duration(eff.elapsed),
        "time_limit": duration(eff.time_limit),
        "cpus": head.alloc_cpus, "nodes": head.num_nodes,
        "cpu_efficiency": percent(eff.cpu_efficiency),
        "memory_used": size(eff.memory_used_bytes),
        "memory_requested": size(eff.memory_requested_bytes),
        "memory_efficiency": percent(eff.memory_efficiency),
        "walltime_use": percent(eff.walltime_use), "qos": head.qos or None,
    }
    return {"stats": stats, "hints": hints(head.state or event.state or "", eff, cfg),
            **ending}


def hints(state: str, eff: Any, cfg: NotifyConfig) -> list[str]:
    """Behaviours §2.4, with the thresholds from the config.

    "Ask for less" needs a run that shows what the work takes: memory and cores only from a
    job that completed or ran to its limit, the time limit only from one that completed (a
    failed job's use says nothing about its needs). Fewer cores only when it had more than one.
    """
    if state not in STATS_STATES:
        return []
    out: list[str] = []
    # OverMemoryKill ends a job FAILED by signal 9, not OUT_OF_MEMORY: the numbers tell.
    over = eff.memory_efficiency is not None and eff.memory_efficiency >= 1.0
    if state == "OUT_OF_MEMORY" or (state == "FAILED" and over):
        out.append("The job ran out of memory: ask for more with --mem or --mem-per-cpu.")
    if state == "TIMEOUT":
        out.append("The job reached its time limit: ask for more time with --time.")
    representative = state in ("COMPLETED", "TIMEOUT")
    if (representative and not over and eff.memory_efficiency is not None
            and eff.memory_efficiency < cfg.memory_low):
        out.append(f"It used {size(eff.memory_used_bytes)} of "
                   f"{size(eff.memory_requested_bytes)} requested memory "
                   f"({percent(eff.memory_efficiency)}): request less.")
    if (representative and eff.cpu_efficiency is not None and eff.cpu_efficiency < cfg.cpu_low
            and (eff.cpus or 0) > 1):
        out.append(f"CPU efficiency was {percent(eff.cpu_efficiency)} of {eff.cpus} CPUs: "
                   "ask for fewer cores.")
    if eff.time_limit is None or eff.time_limit == math.inf:
        out.append("No time limit was set: give --time so the job can be scheduled sooner.")
    elif state == "COMPLETED" and eff.walltime_use is not None and eff.walltime_use < cfg.time_low:
        text = (f"It ran {duration(eff.elapsed)} of its {duration(eff.time_limit)} limit: "
                f"ask for a shorter --time")
        qos = best_qos(eff.elapsed or 0.0, cfg.qos) if cfg.qos else None
        out.append(f"{text} (QoS {qos!r} fits)." if qos else f"{text}.")
    return out
