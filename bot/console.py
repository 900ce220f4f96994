"""The console platform: ``chatops chat`` and the web console talk to the service through it.

Inbound: the text typed, with a channel unique to the session. Outbound: deliveries for that
channel stay in the queue until the session reads them (``take``), rendered as plain text.
"""

from __future__ import annotations

import threading
from pathlib import Path

from bot.commands import Response
from bot.platform import Delivery, Platform
from chatops.queue import Queue
from chatops.report import blocks_as_text

FILE_PREVIEW_CHARS = 20_000


def render_response(response: Response) -> list[str]:
    return [f"```\n{r.text}\n```" if r.code else r.text for r in response.replies]


def render_delivery(delivery: Delivery) -> str:
    report = delivery.report
    if report is None:
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
    return "\n".join(p for p in parts if p)


class ConsolePlatform(Platform):
    name = "console"

    def __init__(self, queue: Queue):
        self.queue = queue

    def take(self, channel: str) -> list[Delivery]:
        """Deliveries waiting for a console session, marked delivered."""
        rows = self.queue.take_channel_deliveries(self.name, channel)
        return [Delivery.from_row(r) for r in rows]

    def deliver(self, delivery: Delivery) -> None:
        # Console deliveries wait in the queue for their session to read them.
        return None

    def serve(self, handler, stop: threading.Event) -> None:  # noqa: ANN001
        stop.wait()
