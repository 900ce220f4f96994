"""The Schedules page (next runs, last outcomes, pause and resume) and the Config page (which
version of job_configs.py each process of the service runs)."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from chatops import live_config, schedule_store
from chatops.access import refusal
from chatops.commands import CommandHandler, Incoming
from chatops.service import Service
from webserver.auth import require_login, web_requester

bp = Blueprint("service_pages", __name__)
bp.before_request(require_login)


def _service() -> Service:
    return current_app.extensions["chatops.service"]


@bp.get("/schedules")
def schedules():
    service = _service()
    config, now = service.config, time.time()
    who = web_requester(channel="web")
    last = schedule_store.last_fires(service.queue.engine)
    states = schedule_store.states(service.queue.engine)
    rows = []
    for spec in config.schedules():
        if refusal(config.namespaces[spec.namespace], who):
            continue  # as hidden here as the namespace is in chat
        state = states.get(spec.key)
        paused = state is not None and state.paused_at is not None
        rows.append({"spec": spec, "last": last.get(spec.key), "state": state, "paused": paused,
                     "next": None if paused else spec.trigger.local(
                         spec.trigger.next_after(now))})
    return render_template("schedules.html", rows=rows, message=request.args.get("message"))


@bp.post("/schedules/<namespace>/<name>/<any(pause, resume):action>")
def pause_or_resume(namespace: str, name: str, action: str):
    handler: CommandHandler = current_app.extensions["chatops.handler"]
    response = handler.handle(Incoming(web_requester(channel="web"),
                                       f"{action} schedule {namespace} {name}"))
    message = " ".join(r.text for r in response.replies)
    return redirect(url_for("service_pages.schedules", message=message))


@bp.get("/config")
def config_versions():
    service = _service()
    path = service.settings.config_path
    try:
        on_disk = live_config.file_hash(path)
    except OSError:
        on_disk = None
    return render_template("config.html", path=path, on_disk=on_disk, now=time.time(),
                           processes=live_config.running_processes(service.queue))
