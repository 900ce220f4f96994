"""Download links to calculations' result files (chatops/calc/links.py): no login, since the
people holding them are chat users with no web account; the signed token is the permission.

A link that was changed is refused (403), one that ended, or whose files retention removed, is
gone (410); each answer is one plain sentence saying what to do, as a browser shows it.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, send_from_directory

from chatops.calc import files, links, store
from chatops.service import Service
from chatops.texts import clock

bp = Blueprint("result_links", __name__)


def _refused(status: int, text: str) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain")


@bp.get(f"{links.PATH}/<token>/<path:name>")
def download(token: str, name: str):
    service: Service = current_app.extensions["chatops.service"]
    try:
        target = links.check(service.settings, token, name)
    except links.LinkRefused as exc:
        return _refused(exc.status, str(exc))
    row = store.of_job(service.queue.engine, target.job_id)
    removed = json.loads(row.results or "{}").get("removed_at") if row else None
    if removed:
        return _refused(410, f"The result files of calculation {target.job_id} were removed on "
                             f"{clock(removed, date=True)}: they are kept only for a while.")
    folder = files.results_dir(service.settings, target.job_id)
    if files.name_problem(target.name) or not (folder / target.name).is_file():
        return _refused(404, f"Calculation {target.job_id} has no result file `{target.name}` "
                             "here any more.")
    response = send_from_directory(folder, target.name, as_attachment=True)
    response.headers["Cache-Control"] = "private, no-store"  # the link is the permission
    return response
