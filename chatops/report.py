"""What a job's end looks like to the people who asked: a platform-neutral report.

The dispatcher makes reports (``success_report``, ``failure_report``); each platform in ``bot/``
renders them (splitting, uploading, fencing) to its own limits. A report travels through the
deliveries table as JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from chatops.joblogs import READ_LIMIT, JobLogs, read_capped, tail

if TYPE_CHECKING:
    from chatops.job_config import JobSpec

MAX_BLOCKS = 50  # Slack's limit for one message


@dataclass
class Report:
    job_id: int
    job_type: str
    namespace: str
    outcome: str  # succeeded | failed | timed_out | cancelled | lost
    format: str = "text"  # text | blocks | code | file
    text: str = ""  # the message (stdout, "succeeded", or the failure explanation)
    blocks: list[dict[str, Any]] | None = None
    file_path: str | None = None
    file_name: str | None = None
    note: str | None = None  # e.g. why blocks fell back to code
    silent: bool = False  # report_success is false: react, say nothing
    details: dict[str, Any] = field(default_factory=dict)
    # Files sent after the message (a calculation's results): {"path": ..., "name": ...} each,
    # with a download link (``url``, working ``until``) where the site makes them
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.outcome == "succeeded"

    def to_payload(self) -> dict[str, Any]:
        return {"kind": "report", **asdict(self)}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Report:
        data = {k: v for k, v in payload.items() if k != "kind"}
        return cls(**data)


def notice(text: str) -> dict[str, Any]:
    """A plain message payload (for notices that are not a job's report)."""
    return {"kind": "notice", "text": text}


def live(text: str) -> dict[str, Any]:
    """A message that changes (a running job's progress): the first send posts it, every
    revision (``chatops.outbound.revise``) edits the message posted. Plain text."""
    return {"kind": "live", "text": text}


def validate_blocks(raw: str) -> tuple[list[dict[str, Any]] | None, str | None]:
    """Parse Block Kit JSON; return (blocks, None) or (None, why it cannot be used)."""
    if not raw.strip():
        return None, "the job printed no blocks"
    try:
        blocks = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"the job's output is not valid JSON ({exc.msg} at line {exc.lineno})"
    if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b
                                               for b in blocks):
        return None, "the job's output is not a list of blocks (objects with a 'type')"
    if not blocks:
        return None, "the job printed an empty list of blocks"
    if len(blocks) > MAX_BLOCKS:
        return None, f"the job printed {len(blocks)} blocks; at most {MAX_BLOCKS} fit a message"
    return blocks, None


def blocks_as_text(blocks: list[dict[str, Any]]) -> str:
    """A readable plain-text rendering of Block Kit blocks (for fallbacks and other platforms)."""
    lines: list[str] = []

    def text_of(obj: Any) -> str:
        if isinstance(obj, dict):
            if isinstance(obj.get("text"), str):
                return obj["text"]
            if "text" in obj:
                return text_of(obj["text"])
            if "elements" in obj:
                return "".join(text_of(e) for e in obj["elements"])
        if isinstance(obj, list):
            return " ".join(text_of(o) for o in obj)
        return ""

    for block in blocks:
        kind = block.get("type")
        if kind == "divider":
            lines.append("———")
        elif kind in ("header", "section", "context", "rich_text"):
            body = text_of(block.get("text") or block.get("elements") or "")
            fields = block.get("fields") or []
            parts = [body] + [text_of(f) for f in fields]
            lines.append("\n".join(p for p in parts if p))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text') or block.get('image_url', '')}]")
        else:
            body = text_of(block)
            if body:
                lines.append(body)
    return "\n".join(line for line in lines if line)


def logs_hint(job_id: int) -> str:
    return f"See the logs with `logs {job_id}` (stdout) or `logs {job_id} stderr`."


def success_report(job_id: int, spec: JobSpec, logs: JobLogs) -> Report:
    base = dict(job_id=job_id, job_type=spec.type, namespace=spec.namespace,
                outcome="succeeded")
    name = f"`{spec.type}` (job {job_id})"
    if not spec.report_success:
        return Report(**base, silent=True)
    stdout_path = logs.path("stdout")
    if spec.report_format == "file" and stdout_path.is_file():  # (no output: no file)
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
