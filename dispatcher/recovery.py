"""Recovery: the running jobs of dispatchers that died, or stopped and handed them over.

Every dispatcher looks now and then (and at start). A dispatcher is dead when its heartbeat is
older than STALE_AFTER_SECONDS, or, on this host, when its process is gone. Each of its running
jobs is adopted by exactly one live dispatcher (a conditional update): a Slurm batch job that
was submitted is tracked again, never submitted twice; any other job is marked lost, what it
left running on this host is killed, and its requesters are told.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from chatops.joblogs import JobLogs, job_logs
from chatops.queue import STALE_AFTER_SECONDS
from chatops.report import describe_end, failure_report
from dispatcher.executors import Active
from dispatcher.local import kill_orphan

if TYPE_CHECKING:
    from dispatcher.loop import Dispatcher

log = logging.getLogger("chatops.dispatcher")


def recover(d: Dispatcher) -> bool:
    """Adopt the jobs of dead dispatchers; True if there were any."""
    now = time.time()
    dead = []
    for row in d.queue.dispatchers():
        if row.id == d.worker:
            continue
        same_host_dead = row.host == d.host and not pid_alive(row.pid)
        if same_host_dead or row.heartbeat_at < now - STALE_AFTER_SECONDS:
            dead.append(row)
    orphans = d.queue.orphaned_jobs([row.id for row in dead])
    local_dead = {row.id for row in dead if row.host == d.host}
    for job in orphans:
        if not d.queue.adopt(job.id, job.claimed_by, d.worker):
            continue  # another dispatcher took it first
        try:
            what = resume(d, job, now)
        except Exception:  # it cannot be tracked again: it is lost like any other
            log.exception("job %s: could not resume tracking it", job.id)
            what = describe_end("lost", None, job.timeout)
        if what is None:
            continue  # a Slurm job, tracked again
        logs = job_logs(d.settings.logs_dir, job)
        own_folder = logs.folder / str(job.id)  # a job started before migration 0008
        if own_folder.is_dir():
            logs = JobLogs(own_folder, job.id)
        if job.claimed_by in local_dead:
            kill_orphan(job.pid, job.pid_start, own_folder)
        wrote = logs.path("stdout").exists() or logs.path("stderr").exists()
        report = failure_report(job.id, job.job_type, job.namespace, "lost", what,
                                logs if wrote else None)
        d.queue.finish(job.id, "lost", summary=what, payload=report.to_payload(),
                       log_dir=str(logs.folder), only_from=("running",))
        log.warning("job %s (%s) was lost with dispatcher %s", job.id, job.job_type,
                    job.claimed_by)
    if dead:
        d.queue.retire_dispatchers([row.id for row in dead], now)
    return bool(orphans)


def resume(d: Dispatcher, job, now: float) -> str | None:
    """Track again a Slurm batch job an earlier dispatcher submitted: None if it is tracked
    again, else why it is lost."""
    lost = describe_end("lost", None, job.timeout)
    spec = d.config.job(job.job_type)
    if spec is None or spec.slurm is None:
        return lost
    executor = d.remote.batch_for(spec)  # a calculation's, or any other batch job's
    record = executor.submission(job.id)
    if record is None:
        return lost + " (it had not been submitted to Slurm)"
    if record.slurm_job_id is None and record.submit_state == "rejected":
        return lost + f" (it was not submitted: {record.error})"
    if record.slurm_job_id is None:
        return (f"was lost: the dispatcher stopped while submitting it to Slurm, so it may "
                f"have been submitted as `chatops-{job.id}` on cluster {spec.cluster} (check "
                f"`squeue -n chatops-{job.id}`); it is not submitted again")
    logs = JobLogs(d.log_folder(job.namespace, job.job_type), job.id)
    run = executor.resume(job.id, spec, logs, record)
    d.track_again(job.id, Active(run=run, job_type=job.job_type, spec=spec, logs=logs,
                                 deadline=(job.started_at or now) + job.timeout))
    log.info("job %s (%s): tracking Slurm job %s again (%s)", job.id, job.job_type,
             record.slurm_job_id, f"its dispatcher {job.claimed_by} is gone"
             if job.claimed_by else "a stopping dispatcher handed it over")
    return None


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
