"""What `logs N` answers about a job the asker may see: the end of its output, or why there is
none (not started, nothing written, removed, a Slurm batch job's one output file)."""

from __future__ import annotations

from pathlib import Path

from chatops import texts
from chatops.joblogs import job_logs, pruned, tail
from chatops.queue import Queue
from chatops.redact import redact

LOG_REPLY_CHARS = 3500


def answer(logs_dir: Path, queue: Queue, job, stderr: bool) -> tuple[str, str]:
    """A line about ``job`` (a jobs row), and the end of its output to show as code ('': none)."""
    stream = "stderr" if stderr else "stdout"
    name = f"Job {job.id} (`{job.job_type}`)"
    if job.state == "queued":
        return f"{name} has not started yet.", ""
    batch = queue.slurm_submission(job.id)
    if batch is not None and batch.slurm_job_id is not None:
        found = _batch(logs_dir, job, batch, stderr)
        if found is not None:
            return found
    text = _end_of(job_logs(logs_dir, job).path(stream))
    if job.state == "running":
        if not text:
            return f"{name} is still running and has written nothing to {stream} yet.", ""
        return f"{name} is still running; the end of what it has written to {stream} so far:", text
    how = pruned(logs_dir, job)
    if how:
        return f"The logs of job {job.id} were removed {how}.", ""
    if not text:
        return f"Job {job.id} wrote nothing to {stream}.", ""
    return f"The end of job {job.id}'s {stream}:", text


def _end_of(path: Path) -> str:
    return redact(tail(path, lines=200, chars=LOG_REPLY_CHARS))


def _batch(logs_dir: Path, job, batch, stderr: bool) -> tuple[str, str] | None:
    """`logs` of a Slurm batch job: its output file holds stdout and stderr (sbatch is
    given only --output), and a running job's copy is refreshed at every status check."""
    name = f"Job {job.id} (`{job.job_type}`)"
    where = f"Slurm job {batch.slurm_job_id} on cluster {batch.cluster}"
    out = batch.output_path or "its output file"
    if stderr:
        runs = "runs" if job.state == "running" else "ran"
        return (f"{name} {runs} as {where}; Slurm writes its stderr into the same file as its "
                f"stdout ({out}): `logs {job.id}` shows both.", "")
    if job.state != "running":
        return None
    path = job_logs(logs_dir, job).path("stdout")
    text = _end_of(path)
    if text:
        copied = texts.clock(path.stat().st_mtime)
        return f"{name} is still running as {where}; the end of {out} as of {copied}:", text
    if batch.slurm_state in (None, "PENDING"):
        return f"{name} is waiting in Slurm's queue as {where}; it has written nothing yet.", ""
    return f"{name} is still running as {where} and has written nothing to {out} yet.", ""
