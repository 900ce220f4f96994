"""``POST /slurm/events``: MailProg events over HTTP, written into the same spool as its files.

Authenticated first (``Authorization: Bearer $CHATOPS_EVENTS_TOKEN``, compared in constant time)
— nothing of the body is read before. Then the event must fit its schema
(``chatops/slurm/event_schema.py``): an ``id`` of the MailProg's form (it becomes the file name,
so nothing else is accepted: no path traversal), and argv, env or subject. The
file is written atomically by the MailProg's own spool writer; the dispatcher ingests it.
A repeated id (a POST that timed out after we took it, then spooled) is dropped at ingest.
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, current_app, jsonify, request

from chatops.mailprog import spool_event
from chatops.payloads import BadPayload, load
from chatops.slurm.event_schema import EVENT

log = logging.getLogger("chatops.web")

bp = Blueprint("slurm_events", __name__)
MAX_EVENT_BYTES = 256 * 1024  # an event is argv + SLURM_* variables: a few KiB


def _authorised(expected: str | None) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


@bp.post("/slurm/events")
def slurm_event():
    service = current_app.extensions["chatops.service"]
    token = service.settings.secret("CHATOPS_EVENTS_TOKEN")
    if not token:
        return jsonify(error="Slurm event intake is off: CHATOPS_EVENTS_TOKEN is not set"), 404
    if not _authorised(token):
        return jsonify(error="missing or wrong bearer token"), 401
    if (request.content_length or 0) > MAX_EVENT_BYTES:
        return jsonify(error=f"an event is at most {MAX_EVENT_BYTES} bytes"), 413
    data = request.get_data(cache=False)[:MAX_EVENT_BYTES + 1]
    if len(data) > MAX_EVENT_BYTES:
        return jsonify(error=f"an event is at most {MAX_EVENT_BYTES} bytes"), 413
    try:
        event = load(data, EVENT, "the event")
    except BadPayload as exc:
        return jsonify(error=f"not a MailProg event: {exc}"), 400
    try:
        spool_event(data, str(service.settings.spool_dir), event["id"])
    except OSError as exc:
        log.error("cannot spool Slurm event %s: %s", event["id"], exc)
        return jsonify(error="the event could not be stored; try again"), 503
    return jsonify(id=event["id"]), 202
