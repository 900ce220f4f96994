"""Talking to a Matrix homeserver with matrix-nio: settings, log-in, and sending notices.

Everything the bot sends is an ``m.notice`` (bots talk in notices, so other bots don't answer
them) with an HTML ``formatted_body`` and a plain ``body`` for clients without HTML.

Settings: MATRIX_HOMESERVER_URL; MATRIX_USER_ID (``@chatops:example.org``) with either
MATRIX_ACCESS_TOKEN or MATRIX_PASSWORD (then the bot logs in at start); MATRIX_DEVICE_ID
(optional, keeps one device across restarts when logging in with a password).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    LoginResponse,
    RoomSendResponse,
    UploadResponse,
)

from chatops.platform import DeliveryError
from chatops.settings import Settings, SetupError

REQUIRED = ("MATRIX_HOMESERVER_URL", "MATRIX_USER_ID")
# Errors that retrying cannot fix: no access to the room, a malformed request, bad credentials.
PERMANENT = {"M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON", "M_NOT_JSON", "M_UNKNOWN_TOKEN",
             "M_MISSING_TOKEN", "M_TOO_LARGE", "M_INVALID_PARAM"}
INLINE_CODE = re.compile(r"`([^`\n]+)`")
BODY = re.compile(r"<body[^>]*>(.*?)</body\s*>", re.S | re.I)


def is_configured(settings: Settings) -> bool:
    return not missing_settings(settings)


def missing_settings(settings: Settings) -> list[str]:
    """What the account still lacks: the homeserver, the user, a token or a password."""
    missing = [n for n in REQUIRED if not settings.secret(n)]
    if not (settings.secret("MATRIX_ACCESS_TOKEN") or settings.secret("MATRIX_PASSWORD")):
        missing.append("MATRIX_ACCESS_TOKEN or MATRIX_PASSWORD")
    return missing


class MatrixLoginError(Exception):
    pass


def new_client(settings: Settings) -> AsyncClient:
    """An AsyncClient for the configured account (not logged in yet: see ``log_in``).

    nio retries 429s and timeouts forever by default; here a 429 comes back as an error (the
    outbox reschedules with its ``retry_after_ms``) and a dead server fails after two tries.
    """
    missing = missing_settings(settings)
    if missing:
        raise SetupError(f"Matrix needs {', '.join(missing)} (see DEPLOY.md, section Matrix)")
    if not settings.environ["MATRIX_HOMESERVER_URL"].startswith(("http://", "https://")):
        raise SetupError("MATRIX_HOMESERVER_URL must be the homeserver's https:// URL, not "
                         f"{settings.environ['MATRIX_HOMESERVER_URL']!r}")
    config = AsyncClientConfig(max_limit_exceeded=0, max_timeouts=1, request_timeout=30,
                               store_sync_tokens=False, encryption_enabled=False)
    return AsyncClient(settings.environ["MATRIX_HOMESERVER_URL"].rstrip("/"),
                       settings.environ["MATRIX_USER_ID"],
                       device_id=settings.environ.get("MATRIX_DEVICE_ID") or None, config=config)


async def log_in(client: AsyncClient, settings: Settings) -> None:
    """Use the access token, or log in with the password (once per client)."""
    if client.access_token:
        return
    token = settings.secret("MATRIX_ACCESS_TOKEN")
    if token:
        client.access_token = token
        client.user_id = settings.environ["MATRIX_USER_ID"]
        return
    response = await client.login(settings.secret("MATRIX_PASSWORD") or "",
                                  device_name="hpc-chatops")
    if not isinstance(response, LoginResponse):  # the message never holds the password
        raise MatrixLoginError(f"Matrix login as {client.user} failed: {response.message}")


# -- content --------------------------------------------------------------------------------

def notice_content(body: str, formatted_body: str) -> dict[str, Any]:
    return {"msgtype": "m.notice", "body": body, "format": "org.matrix.custom.html",
            "formatted_body": formatted_body}


def inline_html(text: str) -> str:
    """Prose as HTML: escaped, `code` spans as <code>, line breaks kept."""
    escaped = INLINE_CODE.sub(r"<code>\1</code>", html.escape(text, quote=False))
    return escaped.replace("\n", "<br>")


def html_body(markup: str) -> str:
    """The inside of ``<body>`` when ``markup`` is a whole document (Matrix clients show a
    fragment; ``<html>``/``<head>`` are not in the spec's allowed tags)."""
    match = BODY.search(markup)
    return (match.group(1) if match else markup).strip()


def code_html(code: str) -> str:
    return f"<pre><code>{html.escape(code, quote=False)}</code></pre>"


def notification_content(title: str, fields: Mapping[str, object] | None = None,
                         text: str = "") -> dict[str, Any]:
    """A notification as a notice: a bold title, then ``name: value`` lines, then free text.

    Every value is HTML-escaped, so a job named ``<b>x</b>`` shows as typed.
    """
    plain = [title]
    rich = [f"<strong>{html.escape(title)}</strong>"]
    for name, value in (fields or {}).items():
        plain.append(f"{name}: {value}")
        rich.append(f"{html.escape(str(name))}: {html.escape(str(value))}")
    if text:
        plain.append(text)
        rich.append(inline_html(text))
    return notice_content("\n".join(plain), "<br>".join(rich))


# -- sending --------------------------------------------------------------------------------

def raise_for(response: object, what: str) -> None:
    """Turn nio's ErrorResponse into DeliveryError (retry_after for M_LIMIT_EXCEEDED)."""
    if not isinstance(response, ErrorResponse):
        return
    code = response.status_code
    if code == "M_LIMIT_EXCEEDED" or code == 429:
        wait = (response.retry_after_ms or 5000) / 1000
        raise DeliveryError(f"Matrix asked to wait {wait:g} s (M_LIMIT_EXCEEDED)",
                            retry_after=wait)
    raise DeliveryError(f"Matrix refused the {what}: {code or ''} {response.message}".strip(),
                        permanent=code in PERMANENT)


async def send_content(client: AsyncClient, room_id: str, content: dict[str, Any],
                       txn_id: str | None = None) -> str:
    """Send one m.room.message to ``room_id``; its event id. Raises DeliveryError.

    ``txn_id``: the same for a resend of the same message (a sender that died after the
    homeserver took it, before its progress was saved), so the homeserver keeps one event:
    it remembers a device's transaction ids (a stable MATRIX_DEVICE_ID, or the token's)."""
    try:
        response = await client.room_send(room_id, "m.room.message", content,
                                          tx_id=txn_id, ignore_unverified_devices=True)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError(f"cannot reach the Matrix homeserver: {exc}") from exc
    raise_for(response, "message")
    assert isinstance(response, RoomSendResponse)
    return response.event_id


async def react(client: AsyncClient, room_id: str, event_id: str, key: str) -> None:
    """Annotate an event with an emoji (👀 accepted, 👍 a quiet success)."""
    try:
        response = await client.room_send(room_id, "m.reaction", {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": event_id, "key": key}})
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError(f"cannot reach the Matrix homeserver: {exc}") from exc
    raise_for(response, "reaction")


async def upload(client: AsyncClient, data: bytes, name: str,
                 content_type: str = "text/plain") -> str:
    """Upload ``data`` to the media repository; its mxc:// URI."""
    try:
        response, _ = await client.upload(lambda *_: data, content_type=content_type,
                                          filename=name, filesize=len(data))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError(f"cannot reach the Matrix homeserver: {exc}") from exc
    raise_for(response, "upload")
    assert isinstance(response, UploadResponse)
    return response.content_uri


class MatrixConnector:
    """The notification pipeline's Matrix connector (``bot.notify.connectors.Connector``): one
    notice to one room id.

    ``send(room_id, payload)`` takes what the templates rendered — ``text`` (the plain body)
    and ``html`` (escaped by the template; a whole HTML document is cut to its body); without
    ``html`` the text is escaped here. ``notify`` builds both from a title and fields. Raises
    DeliveryError (``retry_after`` set when the homeserver said M_LIMIT_EXCEEDED).
    """

    name = "matrix"

    def __init__(self, settings: Settings):
        from bot.asyncloop import LoopThread

        self.settings = settings
        self.client = new_client(settings)
        self.loop = LoopThread("matrix-connector")

    @classmethod
    def is_configured(cls, settings: Settings) -> bool:
        return is_configured(settings)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> MatrixConnector:
        from chatops.settings import load_settings

        return cls(load_settings(environ))

    def send(self, target: str, payload: Mapping[str, Any]) -> str:
        body = str(payload.get("text") or payload.get("subject") or "")
        markup = payload.get("html")
        formatted = html_body(str(markup)) if markup else inline_html(body)
        return self._send(target, notice_content(body, formatted))

    def notify(self, room_id: str, title: str, fields: Mapping[str, object] | None = None,
               text: str = "") -> str:
        return self._send(room_id, notification_content(title, fields, text))

    def _send(self, room_id: str, content: dict[str, Any]) -> str:
        if not room_id.startswith("!"):
            raise DeliveryError(f"not a Matrix room id: {room_id!r} (they start with '!')",
                                permanent=True)

        async def run() -> str:
            await log_in(self.client, self.settings)
            return await send_content(self.client, room_id, content)

        try:
            return self.loop.run(run())
        except MatrixLoginError as exc:
            raise DeliveryError(str(exc)) from exc

    def close(self) -> None:
        if not self.loop.loop.is_closed():  # closing twice is harmless
            self.loop.run(self.client.close())
            self.loop.close()
