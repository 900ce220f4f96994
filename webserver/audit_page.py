"""The Audit page: what happened to calculations and their users, newest first, filterable by
action and person; for admins only (it names everyone)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, render_template, request
from sqlalchemy import func, or_, select

from chatops.calc.audit import ACTIONS
from chatops.db import audit, reading
from chatops.service import Service
from webserver.auth import require_login, web_requester

bp = Blueprint("audit_page", __name__)
bp.before_request(require_login)
LIMIT = 500


@bp.get("/audit")
def audit_rows():
    service: Service = current_app.extensions["chatops.service"]
    me = web_requester(channel="web").qualified_user
    if not service.config.is_admin(me):
        abort(403, description=f"The audit is for admins; you are {me}.")
    action = (request.args.get("action") or "").strip()
    person = (request.args.get("person") or "").strip()
    since_text = (request.args.get("since") or "").strip()
    if action and action not in ACTIONS:
        abort(400, description=f"There is no action {action!r}; the actions are "
                               f"{', '.join(ACTIONS)}.")
    since = time.time() - 30 * 86400
    if since_text:
        try:
            since = datetime.fromisoformat(since_text).replace(tzinfo=UTC).timestamp()
        except ValueError:
            abort(400, description=f"{since_text!r} is not a date: use YYYY-MM-DD.")
    query = select(audit).where(audit.c.at >= since).order_by(audit.c.id.desc()).limit(LIMIT)
    if action:
        query = query.where(audit.c.action == action)
    if person:
        pattern = f"%{person.lower()}%"
        query = query.where(or_(func.lower(audit.c.subject).like(pattern),
                                func.lower(audit.c.actor).like(pattern)))
    with reading(service.queue.engine) as conn:
        rows = list(conn.execute(query))
    return render_template("audit.html", rows=rows, actions=ACTIONS, limit=LIMIT,
                           filters={"action": action, "person": person, "since": since_text})
