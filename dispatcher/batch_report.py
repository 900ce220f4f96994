"""What a Slurm batch job's end report says: the outcome, Slurm's state, exit and efficiency
from sacct, and the end of its output file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatops.report import Report
from chatops.slurm.acct import job_efficiency
from chatops.texts import acct_ending, duration, percent, size

if TYPE_CHECKING:
    from dispatcher.batch import BatchRun


def batch_report(run: BatchRun, stop_reason: str | None) -> tuple[str, Report]:
    """The outcome and report of ``run``, which ended (``stop_reason``: why the dispatcher
    stopped it, if it did)."""
    spec = run.spec
    base = dict(job_id=run.job_id, job_type=spec.type, namespace=spec.namespace)
    name = f"`{spec.type}` (job {run.job_id})"
    if run.error:
        what = f"failed: {run.error}"
        return "failed", Report(**base, outcome="failed", text=f"{name} {what}.",
                                details={"summary": what})
    job = run.acct.job if run.acct else None
    state = job.state if job else "UNKNOWN"
    if stop_reason == "cancelled":
        outcome, what = "cancelled", f"was cancelled (scancel of Slurm job {run.slurm_id})"
    elif stop_reason == "timed_out":
        outcome = "timed_out"
        what = (f"was still running after {spec.timeout:g} s (its timeout), so Slurm "
                f"job {run.slurm_id} was cancelled")
    elif state == "COMPLETED" and job and job.exit_code == 0:
        outcome, what = "succeeded", "completed"
    elif state == "TIMEOUT":
        outcome = "timed_out"
        what = f"timed out: it reached its Slurm time limit of {duration(job.time_limit)}"
    elif state == "CANCELLED":
        outcome, what = "cancelled", "was cancelled on the cluster"
    else:
        outcome = "failed"
        how = acct_ending(run.acct) if run.acct else "exit code unknown"
        what = f"failed ({state}, {how})"
    if outcome == "succeeded" and not spec.report_success:
        return outcome, Report(**base, outcome=outcome, silent=True, details={"summary": what})
    lines = [f"{name} {what}."]
    if job:
        eff = job_efficiency(run.acct)
        limit = f" of {duration(eff.time_limit)}" if eff.time_limit not in (None,
                                                                        float("inf")) else ""
        lines.append(f"Slurm job {run.slurm_id} on cluster {spec.cluster}: {state}, "
                     f"{acct_ending(run.acct)}, elapsed {duration(eff.elapsed)}{limit}.")
        lines.append(f"CPU efficiency {percent(eff.cpu_efficiency)}, memory efficiency "
                     f"{percent(eff.memory_efficiency)} ({size(eff.memory_used_bytes)} of "
                     f"{size(eff.memory_requested_bytes)}).")
    else:
        lines.append(f"Slurm job {run.slurm_id} on cluster {spec.cluster}: no "
                     "accounting record was found.")
    if run.output_tail.strip():
        lines.append(f"Last lines of {run.output_path}:\n```\n{run.output_tail.rstrip()}\n```")
    else:
        lines.append(f"{run.output_path} is empty.")
    return outcome, Report(**base, outcome=outcome, text="\n".join(lines),
                           details={"summary": what, "slurm_job_id": run.slurm_id,
                                    "slurm_state": state})
