"""The web server: one Flask app for every inbound HTTP endpoint of the service.

``create_app(service, handler, platforms)`` wires the dashboard and its console (behind a login),
GitHub webhooks, ``/metrics`` and ``/healthz``, and the HTTP blueprint of each chat platform it
is handed (the CLI, which composes the processes, hands over the configured ones).
``chatops web`` and ``chatops run`` serve it with waitress; tests may use Flask's own server.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

import psycopg
from flask import Flask, abort, jsonify, render_template, request
from sqlalchemy.exc import DBAPIError
from waitress.server import create_server
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from chatops import storage
from chatops.commands import CommandHandler
from chatops.platform import Platform
from chatops.redact import redact
from chatops.service import Service
from chatops.texts import clock, exit_status
from webserver import (
    audit_page,
    auth,
    cluster_pages,
    console,
    dashboard,
    events,
    github,
    metrics,
    result_links,
    service_pages,
)
from webserver.markup import text_html

log = logging.getLogger("chatops.web")

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB


def create_app(service: Service, handler: CommandHandler | None = None,
               platforms: Sequence[Platform] = ()) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["chatops.service"] = service
    app.extensions["chatops.handler"] = handler or CommandHandler(
        service.settings, service.config, service.queue)
    app.extensions["chatops.metrics"] = metrics.Metrics(service.queue, service)
    app.extensions["chatops.platforms"] = [p.name for p in platforms]
    auth.configure(app, service.settings)
    app.jinja_env.filters["clock"] = lambda ts: clock(ts) if ts else ""
    app.jinja_env.filters["exit_status"] = exit_status
    for blueprint in (auth.bp, dashboard.bp, console.bp, github.bp, metrics.bp, events.bp,
                      service_pages.bp, cluster_pages.bp, audit_page.bp,
                      result_links.bp):
        app.register_blueprint(blueprint)
    for platform in platforms:
        blueprint = platform.http_blueprint(app.extensions["chatops.handler"])
        if blueprint is not None:
            app.register_blueprint(blueprint)
            log.info("HTTP endpoints of platform %s registered", platform.name)
    app.before_request(_refuse_nul)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    # (the queue's hot path raises the drivers' own errors: see chatops/queue_sql.py)
    for error in (DBAPIError, sqlite3.Error, psycopg.Error, storage.NoRoom):
        app.register_error_handler(error, _database_error)
    return app


def _refuse_nul() -> None:
    """No URL, query or header we read may hold a NUL: PostgreSQL refuses them in text, so one
    would otherwise become a server error wherever it reaches a query. Bodies are the routes'
    own (checked after their signatures, by their schemas)."""
    texts = [request.path, *request.headers.values()]
    texts += [part for item in request.args.items(multi=True) for part in item]
    if any("\x00" in text for text in texts):
        abort(400, description="The request has a NUL character (%00) in its address or "
                               "headers; remove it.")


def _security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    # No Referer: a login link's token never leaks to another site.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
    return response


def _http_error(exc: HTTPException):
    description = redact(exc.description or "")
    wants_json = (request.path.startswith(("/github/", "/console/", "/slurm/"))
                  or request.accept_mimetypes.best == "application/json")
    if wants_json:
        return jsonify(error=description), exc.code
    # descriptions are written in chat markup (`chatops prune`), as the chat's answers are
    return render_template("error.html", code=exc.code, name=exc.name,
                           description=text_html(description)), exc.code


def _database_error(exc: Exception):
    """A full disk or a read-only database: 503 saying so (GitHub may redeliver later), not a
    bare 500; any other database error is a 500 as before."""
    found = storage.fault(exc)
    if found is None:
        log.error("Exception on %s [%s]", request.path, request.method, exc_info=exc)
        return _http_error(InternalServerError())
    return _http_error(ServiceUnavailable(f"The service cannot store that right now: "
                                          f"{found.short}. Please try again later."))


def make_server(app: Flask, host: str, port: int):
    """A waitress server bound now (so the caller can print its URL); ``.run()`` serves."""
    return create_server(app, host=host, port=port, threads=8, ident="chatops")


def open_web(service: Service, host: str, port: int, *, fresh_token: bool,
             platforms: Sequence[Platform] = (), handler: CommandHandler | None = None):
    """Bind the web server and say how to log in: (server, lines to print).

    With no login configured a token is made (a new one when ``fresh_token``) and the login
    link holding it is printed: it is the only way in.
    """
    server = make_server(create_app(service, handler, platforms), host, port)
    shown_host = f"[{host}]" if ":" in host else host
    base = f"http://{shown_host}:{server.effective_port}"
    token = auth.ensure_token(service.settings, fresh=fresh_token)
    lines = [f"web: {base}/ (health {base}/healthz, metrics {base}/metrics)"]
    if token:
        lines.append(f"web login (token kept in {service.settings.home / auth.TOKEN_FILE}): "
                     f"{auth.login_url(base, token)}")
    else:
        lines.append("web login: the credentials in CHATOPS_WEB_TOKEN or "
                     "CHATOPS_WEB_USERNAME/CHATOPS_WEB_PASSWORD")
    return server, lines
