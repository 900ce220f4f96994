"""Control messages on ``[prefix.]<cluster>.control.<role>``: what a daemon is told to do.

A message's key names the node it is for (its host name), or is empty for every daemon of the
role; its value is JSON: ``{"command": "exit"}`` stops the daemon cleanly, ``{"command":
"dump", "value": true}`` turns the debug dump on (``false`` off). A message older than
``[kafka] control-max-age`` (by its Kafka timestamp) is ignored, so a daemon that starts later
does not obey last week's ``exit``. Anything else is logged and ignored.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

log = logging.getLogger(__name__)

COMMANDS = ("exit", "dump")


@dataclass(frozen=True)
class Command:
    name: str  # "exit" | "dump"
    value: bool | None = None


def interpret(key: str, value: bytes, sent: float | None, names: tuple[str, ...],
              now: float, max_age: float) -> Command | None:
    """The command a control message gives the daemon known by ``names``, or None."""
    if key and key not in names:
        return None
    try:
        body = json.loads(value)
    except ValueError:
        log.warning("control message ignored: not JSON: %r", value[:200])
        return None
    command = body.get("command") if isinstance(body, dict) else None
    if command not in COMMANDS:
        log.warning("control message ignored: unknown command %r (known: %s)", command,
                    ", ".join(COMMANDS))
        return None
    if sent is not None and now - sent > max_age:
        log.info("control message ignored: %r was sent %s, longer ago than control-max-age",
                 command, datetime.fromtimestamp(sent).isoformat(timespec="seconds"))
        return None
    if command == "dump":
        flag = body.get("value")
        if not isinstance(flag, bool):
            log.warning("control message ignored: dump needs \"value\": true or false, not %r",
                        flag)
            return None
        return Command("dump", flag)
    return Command(command)
