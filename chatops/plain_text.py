"""How what the service says reads as plain text: the console, the web console, the dashboard."""

from __future__ import annotations

from pathlib import Path

from chatops.commands import Response
from chatops.notify.render import render
from chatops.platform import Delivery
from chatops.report import blocks_as_text

FILE_PREVIEW_CHARS = 20_000


def render_response(response: Response) -> list[str]:
    return [f"```\n{r.text}\n```" if r.code else r.text for r in response.replies]


def render_delivery(delivery: Delivery) -> str:
    report = delivery.report
    if report is None:
        if delivery.payload.get("kind") == "slurm":  # a notification: as its e-mail reads
            return render("mailto", "", delivery.payload["event"])["text"]
        return delivery.payload.get("text", "")
    if report.silent:
        return f"(job {report.job_id} {report.outcome.replace('_', ' ')})"
    parts = []
    if report.note:
        parts.append(report.note)
    if report.format == "blocks" and report.blocks:
        parts.append(blocks_as_text(report.blocks))
    elif report.format == "code":
        parts.append(f"```\n{report.text.rstrip()}\n```")
    elif report.format == "file" and report.file_path:
        parts.append(report.text)
        parts.append(f"[file {report.file_name}]")
        try:
            parts.append(Path(report.file_path).read_text(errors="replace")[:FILE_PREVIEW_CHARS])
        except OSError as exc:
            parts.append(f"(the file cannot be read here: {exc})")
    else:
        parts.append(report.text)
    parts += [f"[file {f['name']}: {f['path']}]" for f in report.files]
    return "\n".join(p for p in parts if p)
