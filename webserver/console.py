"""The chat console: type a command as in Slack, see the reply and the job's progress live.

It is the console platform with one channel per browser session: the text goes through the same
CommandHandler as every platform; the job's report waits in the queue for this channel and the
page polls for it (short polls, so no server thread is held open).
"""

from __future__ import annotations

import secrets

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    send_from_directory,
    session,
)

from chatops.calc import files, store
from chatops.calc.submit import Attachment
from chatops.commands import CommandHandler, Incoming
from chatops.payloads import BadPayload, load
from chatops.plain_text import render_delivery
from chatops.platform import take_waiting
from chatops.service import Service
from webserver.auth import require_login, web_requester
from webserver.markup import delivery_html, reply_html

MAX_COMMAND_CHARS = 4000
# What the page sends: {"text": "..."} (NUL is the command handler's to refuse, in words).
SEND = {"type": "object", "properties": {"text": {"type": "string"}}}
MAX_UPLOAD_BYTES = 64 * 2**20  # a calculation's input (each runner has its own, smaller, limit)
WATCHED_JOBS = 20  # the session's most recent jobs whose progress the page shows

bp = Blueprint("console", __name__)
bp.before_request(require_login)


def _service() -> Service:
    return current_app.extensions["chatops.service"]


def session_channel() -> str:
    """This browser session's console channel (made on first use)."""
    if "channel" not in session:
        session["channel"] = f"web-{secrets.token_hex(8)}"
    return session["channel"]


@bp.get("/console")
def page():
    return render_template("console.html", channel=session_channel())


@bp.post("/console/send")
def send():
    attachment = None
    if request.mimetype == "multipart/form-data":  # a command with a file (a calculation)
        if (request.content_length or 0) > MAX_UPLOAD_BYTES:
            return jsonify(error=f"That file is larger than {MAX_UPLOAD_BYTES // 2**20} MiB."), 413
        text, upload = request.form.get("text", "run"), request.files.get("file")
        if upload is not None and upload.filename:
            data_of = upload.stream.read
            attachment = Attachment(upload.filename, None, lambda: data_of())
        text = text if text.strip() or attachment is None else "run"
    else:
        try:
            data = load(request.get_data(cache=False) or b"{}", SEND, "the request")
        except BadPayload as exc:
            return jsonify(error=f"{str(exc)[:1].upper()}{str(exc)[1:]}."), 400
        text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        return jsonify(error="Type a command, for example `help`."), 400
    if len(text) > MAX_COMMAND_CHARS:
        return jsonify(error=f"That is longer than {MAX_COMMAND_CHARS} characters."), 400
    handler: CommandHandler = current_app.extensions["chatops.handler"]
    response = handler.handle(Incoming(web_requester(session_channel()), text.strip(),
                                       attachment))
    if response.job_id is not None:
        watched = [j for j in session.get("jobs", []) if j != response.job_id]
        session["jobs"] = (watched + [response.job_id])[-WATCHED_JOBS:]
    return jsonify(replies=[{"text": r.text, "code": r.code, "html": reply_html(r.text, r.code)}
                            for r in response.replies],
                   job_id=response.job_id, refused=response.refused,
                   understood=response.understood)


@bp.get("/console/poll")
def poll():
    service = _service()
    messages = []
    # This session's replies, then the person's Slurm notifications (`notify me` here).
    for delivery in (take_waiting(service.queue, "console", session_channel())
                     + take_waiting(service.queue, "console",
                                    web_requester(session_channel()).user)):
        report = delivery.report
        messages.append({"text": render_delivery(delivery), "html": delivery_html(delivery),
                         "job_id": delivery.job_id,
                         "outcome": report.outcome if report else None})
    jobs = []
    for job_id in session.get("jobs", []):
        job = service.queue.get(job_id)
        if job is not None:
            jobs.append({"id": job.id, "job_type": job.job_type, "state": job.state,
                         "exit_code": job.exit_code})
    return jsonify(messages=messages, jobs=jobs)


@bp.get("/console/results/<int:job_id>/<path:name>")
def result_file(job_id: int, name: str):
    """A calculation's result file, for the person who ran it (and admins)."""
    service = _service()
    row = store.of_job(service.queue.engine, job_id)
    who = web_requester(session_channel()).qualified_user
    if row is None or (row.person != who and not service.config.is_admin(who)):
        abort(404)
    return send_from_directory(files.results_dir(service.settings, job_id), name,
                               as_attachment=True)
