"""The service's signing key: session cookies (the web server) and download links (made by the
dispatcher and the command handler, checked by the web server) are signed with it.

It is ``CHATOPS_WEB_SECRET_KEY``, or one generated once into ``$CHATOPS_HOME/web-secret-key``
(0600). Several processes may be first to need it: the file is linked into place exclusively, so
they all end up with the one key. Each use signs with its own salt, so a cookie is never a link.
"""

from __future__ import annotations

import os
import secrets

from itsdangerous import URLSafeTimedSerializer

from chatops.redact import protect
from chatops.settings import Settings, SetupError

SECRET_KEY_FILE = "web-secret-key"


def secret_key(settings: Settings) -> str:
    """The key: configured, or generated once and kept."""
    configured = settings.environ.get("CHATOPS_WEB_SECRET_KEY")
    if configured:
        return configured
    path = settings.home / SECRET_KEY_FILE
    key = _read(path)
    if not key:
        key = _create(path) or _read(path)
    if not key:
        raise SetupError(f"{path} holds no key: remove it (a new one is made), or set "
                         "CHATOPS_WEB_SECRET_KEY")
    protect(key)
    return key


def serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    """Signs and checks one kind of token (``salt`` names the kind)."""
    return URLSafeTimedSerializer(secret_key(settings), salt=salt)


def _read(path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _create(path) -> str:
    """A new key in a new file; "" when another process made the file first. The key is
    written aside and linked into place, so no process ever reads a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        if os.geteuid() == 0:  # a root dispatcher: the web server (the home's owner) reads it
            home = path.parent.stat()
            os.chown(aside, home.st_uid, home.st_gid)
        os.link(aside, path)
    except FileExistsError:
        return ""
    finally:
        os.unlink(aside)
    return key
