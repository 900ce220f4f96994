"""Who may see the dashboard: a login (token, or user name and password), signed-cookie sessions,
and CSRF tokens for every form and console request.

Credentials come from ``CHATOPS_WEB_TOKEN`` or ``CHATOPS_WEB_USERNAME``/``CHATOPS_WEB_PASSWORD``.
With none set, ``chatops run`` makes a random token, keeps it in ``$CHATOPS_HOME/web-token``
(mode 0600) and prints a login link holding it. Web users are full members (not guests), so they
see restricted namespaces, unless ``CHATOPS_WEB_GUEST=true``; a web user is ``web:<name>``
(``web:admin`` for the token) in access rules, an admin only if ``admins`` lists them. Wrong
guesses are throttled and ``next`` stays on this site (webserver/login_guard.py).
"""

from __future__ import annotations

import hmac
import math
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from chatops.events import Requester
from chatops.redact import protect
from chatops.service import SetupError
from chatops.settings import Settings
from chatops.signing import secret_key
from chatops.texts import plural
from webserver.login_guard import Throttle, client_address, safe_next, trusted_proxies
from webserver.markup import text_html

TOKEN_FILE = "web-token"
# A generated token changes at every start of `chatops run`: an old login link says why it fails.
STALE_TOKEN = ("That token is not the current one: `chatops run` makes a new one each time it "
               "starts. Open the login link it printed at its last start, or use the token kept "
               "in $CHATOPS_HOME/web-token on the server.")

bp = Blueprint("auth", __name__)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)  # an older file may have had looser bits


def has_configured_login(settings: Settings) -> bool:
    env = settings.environ
    return bool(env.get("CHATOPS_WEB_TOKEN")
                or env.get("CHATOPS_WEB_USERNAME") and env.get("CHATOPS_WEB_PASSWORD"))


def ensure_token(settings: Settings, fresh: bool) -> str | None:
    """The generated login token when no login is configured (new one if ``fresh``)."""
    if has_configured_login(settings):
        return None
    path = settings.home / TOKEN_FILE
    if not fresh:
        try:
            token = path.read_text().strip()
            if token:
                protect(token)
                return token
        except OSError:
            pass
    token = secrets.token_urlsafe(24)
    _write_private(path, token)
    protect(token)  # printed once, in the login link; never logged
    return token


def login_url(base: str, token: str | None) -> str:
    return f"{base}/login?token={quote(token)}" if token else f"{base}/login"


def configure(app: Flask, settings: Settings) -> None:
    app.secret_key = secret_key(settings)
    app.config.update(
        SESSION_COOKIE_NAME="chatops_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=_truthy(settings.environ.get("CHATOPS_WEB_SECURE_COOKIE")),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    app.extensions["chatops.throttle"] = Throttle()
    try:
        app.extensions["chatops.proxies"] = trusted_proxies(
            settings.environ.get("CHATOPS_TRUSTED_PROXIES"))
    except ValueError as exc:
        raise SetupError(str(exc)) from exc
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["web_user"] = lambda: session.get("user")


# -- checks the other blueprints use ----------------------------------------------------------

def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def check_csrf() -> None:
    """Refuse a POST without this session's CSRF token (form field or X-CSRF-Token header)."""
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    expected = session.get("csrf") or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description="The form has expired or did not come from this site (CSRF "
                               "check failed): reload the page and try again.")


def require_login():
    """A before_request hook: a session, and a CSRF token on every POST."""
    if not session.get("user"):
        if request.method == "GET" and not request.path.startswith("/console/"):
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return jsonify(error="Log in first."), 401
    if request.method == "POST":
        check_csrf()
    return None


def web_requester(channel: str) -> Requester:
    """The signed-in web user, as the console platform sees them."""
    settings: Settings = current_app.extensions["chatops.service"].settings
    user = session["user"]
    return Requester(platform="console", user=f"web:{user}", channel=channel, user_name=user,
                     is_direct=True, is_guest=_truthy(settings.environ.get("CHATOPS_WEB_GUEST")))


# -- the login page ---------------------------------------------------------------------------

def _check(settings: Settings, token: str, username: str, password: str) -> str | None:
    """The user name the credentials log in as, or None."""
    env = settings.environ
    expected_token = env.get("CHATOPS_WEB_TOKEN")
    if not expected_token and not has_configured_login(settings):
        try:
            expected_token = (settings.home / TOKEN_FILE).read_text().strip()
        except OSError:
            expected_token = None
    if token and expected_token and hmac.compare_digest(token.encode(), expected_token.encode()):
        return "admin"
    user, secret = env.get("CHATOPS_WEB_USERNAME"), env.get("CHATOPS_WEB_PASSWORD")
    if user and secret and username and password:
        same_user = hmac.compare_digest(username.encode(), user.encode())
        same_password = hmac.compare_digest(password.encode(), secret.encode())
        if same_user and same_password:
            return user
    return None


def remote_address() -> str:
    """The client's address, believing X-Forwarded-For only from CHATOPS_TRUSTED_PROXIES."""
    return client_address(request.remote_addr, request.headers.get("X-Forwarded-For"),
                          current_app.extensions["chatops.proxies"])


@bp.route("/login", methods=["GET", "POST"])
def login():
    settings: Settings = current_app.extensions["chatops.service"].settings
    uses_password = bool(settings.environ.get("CHATOPS_WEB_USERNAME"))
    error = None
    wait = 0.0
    token = request.args.get("token", "")
    next_page = safe_next(request.values.get("next"))
    status = 200
    if request.method == "POST" or token:
        if request.method == "POST":
            check_csrf()
            token = request.form.get("token", "")
        # Checked whatever the throttle says: the right credentials always get in.
        user = _check(settings, token, request.form.get("username", ""),
                      request.form.get("password", ""))
        if user:
            session.clear()
            session.permanent = True
            session["user"] = user
            csrf_token()
            return redirect(next_page or url_for("dashboard.queue"))
        throttle: Throttle = current_app.extensions["chatops.throttle"]
        wait = throttle.failed(remote_address())
        error, status = "Those credentials are not right.", 401
        if token and not has_configured_login(settings):
            error = STALE_TOKEN
        if wait:
            throttle.pause()
            minutes = plural(max(1, math.ceil(wait / 60)), "minute")
            error, status = (f"Too many wrong logins from your address: wrong ones are refused "
                             f"for the next {minutes}. The right credentials still work."), 429
    # error texts are written in chat markup (`chatops run`): shown as the chat shows them
    answer = render_template("login.html", error=text_html(error) if error else None,
                             uses_password=uses_password, next=next_page)
    if status == 429:
        return answer, status, {"Retry-After": str(int(wait) + 1)}
    return answer, status


@bp.post("/logout")
def logout():
    check_csrf()
    session.clear()
    return redirect(url_for("auth.login"))
