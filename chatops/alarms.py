"""The service's own alarms go to the admin channel (``admin_channel`` in job_configs.py).

Today's alarms are start-up warnings: whatever a process logs at WARNING or above while it
starts (a platform half configured, a weak login token, no admins) is gathered and sent as one
notice once it has started, through the outbound path like any report. They are logged too.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chatops.report import notice
from chatops.texts import plural

log = logging.getLogger("chatops.alarms")

WEAK_TOKEN_CHARS = 20  # a generated token has 32


def queue_notice(queue: Any, target: str, text: str) -> int:
    """Queue ``text`` for ``target`` ('platform:channel') on the outbound path."""
    platform, _, channel = target.partition(":")
    return queue.add_delivery(platform, notice(text), channel=channel)


class _Gather(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("chatops"):
            self.lines.append(record.getMessage())


def security_warnings(service: Any) -> None:
    """Log what an admin should fix in how the service is set up."""
    config, env = service.config, service.settings.environ
    if not config.admins:
        log.warning("no admins in job_configs.py: nobody may read the logs of other people's "
                    "private jobs or cancel them; add admins = [\"slack:U…\", …]")
    token = env.get("CHATOPS_WEB_TOKEN") or ""
    if token and len(token) < WEAK_TOKEN_CHARS:
        log.warning("CHATOPS_WEB_TOKEN is %d characters long: it is all that keeps the "
                    "dashboard closed; use at least %d random ones (python3 -c 'import secrets; "
                    "print(secrets.token_urlsafe(24))')", len(token), WEAK_TOKEN_CHARS)


@contextmanager
def startup(service: Any, what: str) -> Iterator[None]:
    """Around a process's start: its warnings go to the admin channel when it has started."""
    gather = _Gather()
    root = logging.getLogger()
    root.addHandler(gather)
    try:
        security_warnings(service)
        yield
    finally:
        root.removeHandler(gather)
    target = service.config.admin_channel
    if gather.lines and target:
        text = "\n".join([f"{what} started on {socket.gethostname()} with "
                          f"{plural(len(gather.lines), 'warning')}:"]
                         + [f"• {line}" for line in gather.lines])
        try:
            queue_notice(service.queue, target, text)
        except Exception:  # the alarm is in the log already; starting matters more
            log.exception("could not send the start-up warnings to %s", target)
