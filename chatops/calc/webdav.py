"""A copy of a calculation's result files on the site's WebDAV server (Nextcloud, ownCloud or
any other), for its users to fetch there.

``CHATOPS_RESULTS_WEBDAV_URL`` is the folder, with the account in it
(``https://chatops:app-password@cloud.example/remote.php/dav/files/chatops/results``); it is a
secret (chatops/redact.py), and what people are shown is the same URL without the account. A
calculation's files go to ``<folder>/<platform>-<user id>/<calculation id>/<name>``.
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

TIMEOUT = 120.0  # seconds for one request (a result file may be tens of MB)


class WebDAVError(Exception):
    """The copy failed; the message says how, without the account."""


def configured(environ: Mapping[str, str]) -> str | None:
    return (environ.get("CHATOPS_RESULTS_WEBDAV_URL") or "").strip() or None


def shown(url: str) -> str:
    """The URL as people may see it: no user name or password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def copy(url: str, folder: list[str], files: list[dict[str, Any]]) -> str:
    """Put ``files`` (``path``, ``name``) into ``folder`` (its parts, made when missing) under
    the WebDAV folder ``url`` (made too); the folder's URL as people may see it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebDAVError("CHATOPS_RESULTS_WEBDAV_URL is not an http(s) URL")
    headers = {}
    if parts.username is not None:
        account = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(account.encode()).decode()
    base = shown(url).rstrip("/")
    for depth in range(len(folder) + 1):  # the site's folder too: made on first use
        target = base + "".join("/" + quote(p, safe="") for p in folder[:depth]) + "/"
        _send("MKCOL", target, headers, ok=(201, 405))  # 405: it is there already
    target = base + "".join("/" + quote(p, safe="") for p in folder) + "/"
    for entry in files:
        with open(entry["path"], "rb") as data:
            _send("PUT", target + quote(entry["name"], safe=""),
                  {**headers, "Content-Length": str(os.fstat(data.fileno()).st_size),
                   "Content-Type": "application/octet-stream"}, ok=(200, 201, 204), body=data)
    return target


def _send(method: str, url: str, headers: dict[str, str], ok: tuple[int, ...],
          body: Any = None) -> None:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        if status not in ok:
            raise WebDAVError(f"{method} {url} was answered {status} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebDAVError(f"{method} {url} failed: {reason}") from None
    if status not in ok:
        raise WebDAVError(f"{method} {url} was answered {status}")
