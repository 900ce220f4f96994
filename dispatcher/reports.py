"""Turn a finished job and its logs into a Report for the people who asked."""

from __future__ import annotations

from pathlib import Path

from chatops.job_config import JobSpec
from chatops.joblogs import JobLogs
from chatops.report import Report, validate_blocks

READ_LIMIT = 1024 * 1024  # what a report carries of stdout; the rest stays in the log
STDERR_TAIL_LINES = 20
STDERR_TAIL_CHARS = 1500


def read_capped(path: Path, limit: int = READ_LIMIT) -> tuple[str, bool]:
    """The start of a log file, and whether it was cut."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return "", False
    return data[:limit].decode("utf-8", "replace"), len(data) > limit


def tail(path: Path, lines: int = STDERR_TAIL_LINES, chars: int = STDERR_TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - chars * 4))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    text = "\n".join(data.rstrip("\n").splitlines()[-lines:])
    return text[-chars:]


def logs_hint(job_id: int) -> str:
    return f"See the logs with `logs {job_id}` (stdout) or `logs {job_id} stderr`."


def success_report(job_id: int, spec: JobSpec, logs: JobLogs) -> Report:
    base = dict(job_id=job_id, job_type=spec.type, namespace=spec.namespace,
                outcome="succeeded")
    name = f"`{spec.type}` (job {job_id})"
    if not spec.report_success:
        return Report(**base, silent=True)
    stdout_path = logs.path("stdout")
    if spec.report_format == "file" and stdout_path.is_file():
        return Report(**base, format="file", file_path=str(stdout_path),
                      file_name=f"{spec.type}-{job_id}.txt",
                      text=f"{name} succeeded; its output is attached.")
    if spec.report_format == "text" and not spec.report_stdout:
        return Report(**base, text=f"{name} succeeded.")
    stdout, cut = read_capped(stdout_path)
    note = f"Output cut at {READ_LIMIT // 1024} KiB; `logs {job_id}` shows more." if cut else None
    if not stdout.strip():
        return Report(**base, text=f"{name} succeeded with no output.")
    if spec.report_format == "blocks":
        blocks, problem = validate_blocks(stdout)
        if blocks is not None:
            return Report(**base, format="blocks", blocks=blocks, text=stdout)
        return Report(**base, format="code", text=stdout,
                      note=f"Could not show this as blocks: {problem}. Here is the raw output.")
    if spec.report_format == "code":
        return Report(**base, format="code", text=stdout, note=note)
    return Report(**base, text=stdout.rstrip("\n"), note=note)


def failure_report(job_id: int, spec_type: str, namespace: str, outcome: str,
                   what: str, logs: JobLogs | None) -> Report:
    """A job that did not succeed: what happened, the end of stderr, and how to see more."""
    parts = [f"`{spec_type}` (job {job_id}) {what}."]
    stderr_tail = tail(logs.path("stderr")) if logs else ""
    if stderr_tail:
        parts.append(f"Last lines of stderr:\n```\n{stderr_tail}\n```")
    if logs:
        parts.append(logs_hint(job_id))
    return Report(job_id=job_id, job_type=spec_type, namespace=namespace, outcome=outcome,
                  text="\n".join(parts), details={"stderr_tail": stderr_tail})


def describe_end(outcome: str, exit_code: int | None, timeout: float, cancelled_by: str = "",
                 extra: str = "") -> str:
    if outcome == "failed" and exit_code is not None and exit_code < 0:
        return f"was killed by signal {-exit_code}"
    if outcome == "failed" and exit_code is not None:
        return f"failed with exit code {exit_code}"
    if outcome == "timed_out":
        return f"timed out after {timeout:g} s and was stopped"
    if outcome == "cancelled":
        return "was cancelled" + (f" by {cancelled_by}" if cancelled_by else "")
    if outcome == "lost":
        return "was lost: the dispatcher running it stopped unexpectedly; it was not re-run"
    return f"failed: {extra}" if extra else "failed"
