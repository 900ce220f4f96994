"""The dashboard pages: the queue, the job history, one job (with its report and logs).

Everything here needs a login. The web user (``web:<name>``) sees the jobs they could see in chat
(chatops/access.py): the lists leave out the others, and their pages and logs answer "not
yours". Notices to the admin channel, when it is a console channel, are for admins only.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from markupsafe import Markup
from sqlalchemy import and_, select

from chatops.access import not_yours, refusal
from chatops.commands import CommandHandler, Incoming
from chatops.db import JOB_STATES, deliveries, jobs, reading
from chatops.joblogs import job_logs, pruned
from chatops.platform import Delivery
from chatops.redact import redact
from chatops.service import Service
from chatops.texts import held_until
from webserver.auth import require_login, web_requester
from webserver.markup import delivery_html, reply_html, text_html

LOG_VIEW_BYTES = 256 * 1024  # what a job page shows of each log; the rest is a download away
HISTORY_LIMIT = 200
CHANNEL_MESSAGES = 15
STATES = JOB_STATES

bp = Blueprint("dashboard", __name__)
bp.before_request(require_login)


def _service() -> Service:
    return current_app.extensions["chatops.service"]


def _refused(namespace: str) -> str | None:
    """Why this web user may not see ``namespace`` (None: they may)."""
    ns = _service().config.namespaces.get(namespace)
    return refusal(ns, web_requester(channel="web")) if ns is not None else None


def _visible(rows: list) -> list:
    """The jobs among ``rows`` this web user may see."""
    handler: CommandHandler = current_app.extensions["chatops.handler"]
    who = web_requester(channel="web")
    return [row for row in rows if handler.may_see(row, who)]


@bp.get("/")
def queue():
    service = _service()
    now = time.time()
    scheduled = _visible(service.queue.jobs_in(("queued",)))
    windows = service.queue.suppressions(now)
    return render_template(
        "queue.html", now=now,
        running=_visible(service.queue.jobs_in(("running",))), scheduled=scheduled,
        held={job.id: held_until(job.job_type, max(now, job.start_after), windows)
              for job in scheduled},
        suppressions=[s for s in windows if _refused(s.job_type.partition("_")[0]) is None],
        dispatchers=service.queue.dispatchers(), messages=channel_messages())


def channel_messages() -> list[dict]:
    """Recent console messages to named channels (a namespace's default_channel when no chat
    platform is configured: GitHub's jobs and notices), so that somebody sees them."""
    service = _service()
    private = ("web-%", "cli-%")  # console sessions read their own channels
    with reading(service.queue.engine) as conn:
        rows = conn.execute(
            select(deliveries, jobs.c.namespace).outerjoin(jobs, jobs.c.id == deliveries.c.job_id)
            .where(deliveries.c.platform == "console", deliveries.c.channel.is_not(None),
                   and_(*[deliveries.c.channel.not_like(p) for p in private]))
            .order_by(deliveries.c.id.desc()).limit(CHANNEL_MESSAGES)).all()
    config = service.config
    admin_only = {config.admin_channel.partition(":")[2]} if (
        config.admin_channel or "").startswith("console:") else set()
    if config.is_admin(web_requester(channel="web").qualified_user):
        admin_only = set()
    return [{"channel": r.channel, "job_id": r.job_id, "created_at": r.created_at,
             "html": delivery_html(Delivery.from_row(r))}
            for r in rows if r.channel not in admin_only
            and (r.namespace is None or _refused(r.namespace) is None)]


@bp.get("/jobs")
def history():
    service = _service()
    filters = {key: (request.args.get(key) or "").strip() or None
               for key in ("namespace", "state", "user")}
    if filters["state"] and filters["state"] not in STATES:
        abort(400, description=f"There is no job state {filters['state']!r}; the states are "
                               f"{', '.join(STATES)}.")
    rows = service.queue.history(HISTORY_LIMIT, **filters)
    return render_template("history.html", jobs=_visible(rows), filters=filters,
                           namespaces=sorted(service.config.namespaces), states=STATES,
                           limit=HISTORY_LIMIT)


def _job_or_abort(job_id: int):
    job = _service().queue.get(job_id)
    if job is None:
        abort(404, description=f"There is no job {job_id}.")
    handler: CommandHandler = current_app.extensions["chatops.handler"]
    if not handler.may_see(job, web_requester(channel="web")):
        abort(403, description=not_yours(job_id))
    return job


def _log_path(job, stream: str) -> Path:
    return job_logs(_service().settings.logs_dir, job).path(stream)


def read_log_tail(path: Path, limit: int = LOG_VIEW_BYTES) -> dict:
    """The end of a log for display: text, its full size, and whether the start was cut."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            f.seek(max(0, size - limit))
            data = f.read(limit)
    except OSError:
        return {"exists": False, "text": "", "size": 0, "cut": False}
    return {"exists": True, "text": redact(data.decode("utf-8", "replace")), "size": size,
            "cut": size > limit}


@bp.get("/jobs/<int:job_id>")
def job(job_id: int):
    row = _job_or_abort(job_id)
    service = _service()
    with reading(service.queue.engine) as conn:
        delivered = conn.execute(select(deliveries).where(deliveries.c.job_id == job_id)
                                 .order_by(deliveries.c.id)).all()
    report = next((delivery_html(Delivery.from_row(d)) for d in delivered
                   if json.loads(d.payload).get("kind") == "report"), None)
    ended = row.finished_at and row.started_at
    return render_template(
        "job.html", job=row, args=json.loads(row.args or "{}"), report=report,
        deliveries=delivered, subscribers=service.queue.subscribers_of(job_id),
        duration=(row.finished_at - row.started_at) if ended else None,
        logs={stream: read_log_tail(_log_path(row, stream)) for stream in ("stdout", "stderr")},
        pruned=_pruned_html(service, row), cap_kib=LOG_VIEW_BYTES // 1024)


def _pruned_html(service: Service, row) -> Markup | None:
    how = pruned(service.settings.logs_dir, row)
    return text_html(how) if how else None


@bp.get("/jobs/<int:job_id>/<any(stdout, stderr):stream>")
def log_file(job_id: int, stream: str):
    row = _job_or_abort(job_id)
    path = _log_path(row, stream)
    if not path.is_file():
        how = pruned(_service().settings.logs_dir, row)
        if how:  # as the job's page says, not "no stdout (yet)"
            abort(410, description=f"The logs of job {job_id} were removed {how}.")
        abort(404, description=f"Job {job_id} has no {stream} (yet).")

    def lines():  # a line at a time: no secret spans two lines, and a big log is streamed
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            for line in f:
                yield redact(line)

    return Response(stream_with_context(lines()), mimetype="text/plain; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "Content-Disposition":
                             f'inline; filename="job-{job_id}-{stream}.txt"'})


@bp.post("/jobs/<int:job_id>/cancel")
def cancel(job_id: int):
    _job_or_abort(job_id)
    handler: CommandHandler = current_app.extensions["chatops.handler"]
    response = handler.handle(Incoming(web_requester(channel="web"), f"cancel {job_id}"))
    back = request.form.get("back", "")
    from_queue = back == url_for("dashboard.queue")  # the queue page's buttons
    return render_template("message.html", title=f"Job {job_id}",
                           lines=[reply_html(r.text, r.code) for r in response.replies],
                           job_id=job_id, back_to_queue=from_queue)
