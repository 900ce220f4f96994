"""A message that changes (a ``live`` delivery: live progress, the monitor's status board), the
same on every platform: posted once, then edited with its newest text.

An edit the chat refuses because the message is gone or can no longer be edited (deleted,
too old) posts a new message instead, which from then on is the one edited (its id replaces
the old one in the delivery's progress). A payload with ``"pin": true`` (the board) is pinned
when it is posted, where the bot is allowed to pin; a refused pin is logged, never an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chatops.platform import Delivery

log = logging.getLogger("chatops.live")


def send_live(delivery: Delivery, *, post: Callable[[Any], Any], edit: Callable[[Any], None],
              gone: Callable[[Exception], bool],
              pin: Callable[[Any], None] | None = None) -> None:
    """``post(replacing)`` sends the text and returns the message's id (a plain JSON value;
    ``replacing``: the id of the message that is gone, or None, so that a platform with
    idempotency keys gives a new board its own, the same on every retry);
    ``edit(id)`` replaces its text; ``gone(exc)`` says an edit's error means the message cannot
    be edited any more; ``pin(id)`` pins it (None: the platform cannot pin)."""
    posted = delivery.progress.get("live")
    if posted is not None:
        try:
            edit(posted)
            return
        except Exception as exc:
            if not gone(exc):
                raise
            log.warning("delivery %s to %s: message %s cannot be edited any more (%s); "
                        "posting a new one", delivery.id, delivery.platform, posted, exc)
    message = post(posted)
    delivery.record("live", message)
    if not delivery.payload.get("pin"):
        return
    if pin is None:
        log.info("delivery %s: %s cannot pin messages; the board is not pinned", delivery.id,
                 delivery.platform)
        return
    try:
        pin(message)
    except Exception as exc:  # no permission (scope, role, power level): the board still works
        log.warning("delivery %s: could not pin the message in %s %s: %s", delivery.id,
                    delivery.platform, delivery.channel, exc)
