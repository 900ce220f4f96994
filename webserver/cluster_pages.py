"""The Clusters page: each monitored cluster's status board (as chat shows it), its uptime, and
a timeline of its changes (?window=7d for a week)."""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, render_template, request

from chatops import monitor_chat, monitor_store
from chatops.monitor_texts import Clock
from chatops.service import Service
from webserver.auth import require_login
from webserver.markup import text_html

bp = Blueprint("cluster_pages", __name__)
bp.before_request(require_login)


@bp.get("/clusters")
def clusters():
    service: Service = current_app.extensions["chatops.service"]
    window = request.args.get("window", "24h")
    if window not in monitor_chat.WINDOWS:  # said, as the history's unknown state is
        abort(400, description=f"There is no window {window!r}; the windows are "
                               f"{', '.join(monitor_chat.WINDOWS)}.")
    now = time.time()
    cards = []
    for one in monitor_chat.views(service.config, service.queue.engine, now):
        clock = Clock(one.spec.timezone, now)
        rows = monitor_store.transitions(service.queue.engine, one.spec.cluster,
                                         now - monitor_chat.WINDOWS[window])
        cards.append({"view": one, "board": text_html(one.board),
                      "uptime": {k: monitor_chat.uptime_text(v) for k, v in one.uptime.items()},
                      "timeline": [monitor_chat.transition_line(r, clock)
                                   for r in reversed(rows)]})
    return render_template("clusters.html", cards=cards, window=window)
