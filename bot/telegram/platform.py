"""The Telegram platform: python-telegram-bot's Application for commands, its Bot for reports.

Long polling by default. With ``TELEGRAM_WEBHOOK_URL`` set (``https://host/telegram/<secret
path>``), ``serve`` registers that webhook with Telegram (with a secret token) and the web
server's blueprint receives the updates: the path must match and the
``X-Telegram-Bot-Api-Secret-Token`` header must equal the secret before the body is parsed.

Settings: TELEGRAM_BOT_TOKEN; TELEGRAM_API_URL (default https://api.telegram.org);
TELEGRAM_WEBHOOK_URL, TELEGRAM_WEBHOOK_SECRET (default: derived from the token);
TELEGRAM_TRUSTED_CHATS (comma-separated chat ids whose members may use restricted namespaces).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import threading
import warnings
from datetime import timedelta
from urllib.parse import urlparse

from flask import Blueprint, abort, jsonify, request
from telegram import Bot, ReactionTypeEmoji, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application, CallbackContext, MessageHandler, filters

from bot.asyncloop import LoopThread
from bot.live import send_live
from bot.render import delivery_pieces, upload_limit
from bot.telegram.inbound import QUIET_SUCCESS, Inbound
from bot.telegram.schema import UPDATE
from bot.telegram.send import FILE_LIMIT, NO_PREVIEW, Sender
from chatops.commands import CommandHandler
from chatops.notify.render import for_platform, templates_dir
from chatops.payloads import BadPayload, load
from chatops.platform import Delivery, DeliveryError, Platform
from chatops.redact import protect
from chatops.service import Service, SetupError
from chatops.settings import Settings

log = logging.getLogger("chatops.telegram")

DEFAULT_API_URL = "https://api.telegram.org"
# editMessageText's errors for a message that cannot be edited any more: a new one is posted
EDIT_GONE = ("message to edit not found", "message can't be edited")
POLL_TIMEOUT = 25  # seconds a getUpdates long poll may wait for news


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int form will become a timedelta
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def _log_error(update: object, context: CallbackContext) -> None:
    """An update whose handling failed (the user gets no answer); PTB carries on."""
    log.error("telegram: an update could not be handled: %r", context.error,
              exc_info=context.error)


class TelegramPlatform(Platform):
    name = "telegram"

    def __init__(self, service: Service):
        self.service = service
        settings = service.settings
        token = settings.secret("TELEGRAM_BOT_TOKEN")
        if not token:
            raise SetupError("TELEGRAM_BOT_TOKEN is not set: Telegram needs the bot's token "
                             "from @BotFather; see DEPLOY.md, section Telegram")
        self.token = token
        self.api_url = (settings.environ.get("TELEGRAM_API_URL") or DEFAULT_API_URL).rstrip("/")
        self.webhook_url = settings.environ.get("TELEGRAM_WEBHOOK_URL") or None
        self.file_limit = upload_limit(settings.environ, "telegram", FILE_LIMIT)
        self.webhook_path: str | None = None
        if self.webhook_url:
            path = urlparse(self.webhook_url).path
            if not path.startswith("/telegram/") or len(path) <= len("/telegram/"):
                raise SetupError("TELEGRAM_WEBHOOK_URL must end in /telegram/<secret path>, "
                                 f"not {path!r}")
            self.webhook_path = path[len("/telegram/"):]
        self.webhook_secret = settings.secret("TELEGRAM_WEBHOOK_SECRET") or hmac.new(
            token.encode(), b"chatops telegram webhook", hashlib.sha256).hexdigest()
        protect(self.webhook_secret, self.webhook_path)  # derived: no setting holds them
        self.trusted_chats = frozenset(
            c.strip() for c in settings.environ.get("TELEGRAM_TRUSTED_CHATS", "").split(",")
            if c.strip())
        self.loop = LoopThread("telegram-loop")
        httpx_log = logging.getLogger("httpx")
        if httpx_log.level == logging.NOTSET:  # one INFO line per poll, with the token in its URL
            httpx_log.setLevel(logging.WARNING)
        self._app: Application | None = None
        self._lock = threading.Lock()

    @classmethod
    def is_configured(cls, settings: Settings) -> bool:
        return bool(settings.secret("TELEGRAM_BOT_TOKEN"))

    @classmethod
    def missing_settings(cls, settings: Settings) -> list[str]:
        if settings.environ.get("TELEGRAM_WEBHOOK_URL") and not cls.is_configured(settings):
            return ["TELEGRAM_BOT_TOKEN"]
        return []

    def check(self) -> None:
        """getMe with the token: a refused token or an unreachable API stops start-up."""
        try:
            self.application()
        except InvalidToken:
            raise SetupError("TELEGRAM_BOT_TOKEN was refused by Telegram: copy the token "
                             "@BotFather gave (/mybots → API Token)") from None
        except TelegramError as exc:
            raise SetupError(f"cannot reach the Telegram Bot API at {self.api_url} to check "
                             f"TELEGRAM_BOT_TOKEN: {exc} (is TELEGRAM_API_URL right?)") from None

    # -- the PTB application ----------------------------------------------------------------

    def application(self, handler: CommandHandler | None = None) -> Application:
        """The Application, initialised (getMe) on first use; handlers added once given."""
        with self._lock:
            if self._app is None:
                app = (Application.builder().token(self.token)
                       .base_url(f"{self.api_url}/bot").base_file_url(f"{self.api_url}/file/bot")
                       .get_updates_read_timeout(POLL_TIMEOUT + 10).build())
                self.loop.run(app.initialize())
                self._app = app
            if handler is not None and not self._app.handlers:
                inbound = Inbound(handler, self.trusted_chats)
                self._app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT,
                                                     inbound.on_message))
                self._app.add_handler(MessageHandler(
                    filters.UpdateType.MESSAGE & filters.Document.ALL, inbound.on_document))
                self._app.add_error_handler(_log_error)
            return self._app

    @property
    def bot(self) -> Bot:
        return self.application().bot

    def serve(self, handler: CommandHandler, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                app = self.application(handler)
                break
            except TelegramError as exc:  # Telegram unreachable at start: keep trying
                log.warning("telegram: cannot start (%s); retrying in 10 s", exc)
                stop.wait(10)
        else:
            return
        if self.webhook_url:
            self.loop.run(app.bot.set_webhook(self.webhook_url, secret_token=self.webhook_secret,
                                              allowed_updates=["message"]))
            log.info("telegram: updates arrive by webhook at /telegram/…")
            stop.wait()
            return
        self.loop.run(app.updater.start_polling(timeout=POLL_TIMEOUT, poll_interval=0,
                                                allowed_updates=["message"]))
        self.loop.run(app.start())
        log.info("telegram: long polling as @%s", app.bot.username)
        try:
            stop.wait()
        finally:
            self.loop.run(app.updater.stop(), timeout=POLL_TIMEOUT + 15)
            self.loop.run(app.stop())

    def close(self) -> None:
        if self._app is not None:
            self.loop.run(self._app.shutdown())
        self.loop.close()

    def process_update(self, data: dict, handler: CommandHandler) -> None:
        """Handle one update that arrived by webhook (already authenticated)."""
        app = self.application(handler)
        self.loop.run(app.process_update(Update.de_json(data, app.bot)))

    # -- outbound ---------------------------------------------------------------------------

    def deliver(self, delivery: Delivery) -> None:
        if delivery.channel is None:
            raise DeliveryError("no Telegram chat to deliver to", permanent=True)
        pieces = delivery_pieces(delivery.payload)
        report = delivery.report
        name = f"{report.job_type}-{report.job_id}.txt" if report else "message.txt"
        thread = int(delivery.thread) if delivery.thread and delivery.thread.isdigit() else None
        reply_to = int(delivery.message) if delivery.message and not delivery.is_direct else None
        try:
            if delivery.payload.get("kind") == "slurm":
                self._slurm(delivery, thread)
                return
            if delivery.payload.get("kind") == "live":
                self._live(delivery, thread)
                return
            sender = Sender(self.bot, delivery.channel, thread=thread, reply_to=reply_to,
                            file_name=name, skip=delivery.progress.get("sent", 0),
                            on_sent=lambda sent: delivery.record("sent", sent),
                            file_limit=self.file_limit)
            if pieces:
                self.loop.run(sender.pieces(pieces))
            elif delivery.message:  # a quiet success: a reaction instead of a message
                self.loop.run(self.bot.set_message_reaction(
                    delivery.channel, int(delivery.message), [ReactionTypeEmoji(QUIET_SUCCESS)]))
        except RetryAfter as exc:
            wait = retry_seconds(exc)
            raise DeliveryError(f"Telegram asked to wait {wait:g} s (429 Too Many Requests)",
                                retry_after=wait) from exc
        except (Forbidden, BadRequest) as exc:  # blocked, kicked, no such chat: retrying won't help
            raise DeliveryError(f"Telegram refused the message: {exc}", permanent=True) from exc
        except TelegramError as exc:
            raise DeliveryError(f"Telegram error: {exc}") from exc
        except OSError as exc:  # the report's file cannot be read here
            raise DeliveryError(f"cannot read the report's file: {exc}", permanent=True) from exc

    def _slurm(self, delivery: Delivery, thread: int | None) -> None:
        """A Slurm notification: one HTML message from the Telegram templates."""
        if delivery.progress.get("sent"):
            return
        text = for_platform("telegram", delivery.channel or "", delivery.payload,
                            templates_dir(self.service.settings.environ))["text"]
        self.loop.run(self.bot.send_message(delivery.channel, text, parse_mode=ParseMode.HTML,
                                            message_thread_id=thread,
                                            link_preview_options=NO_PREVIEW))
        delivery.record("sent", 1)

    def _live(self, delivery: Delivery, thread: int | None) -> None:
        """Post a message that changes, or edit it (editMessageText) with its newest text; a
        board is pinned (pinChatMessage: an admin's "pin messages" right in a group)."""
        text = html.escape(delivery.payload.get("text", "")[:4000], quote=False)
        chat = delivery.channel

        def post(_replacing: int | None) -> int:
            return self.loop.run(self.bot.send_message(
                chat, text, parse_mode=ParseMode.HTML, message_thread_id=thread,
                link_preview_options=NO_PREVIEW)).message_id

        def edit(message_id: int) -> None:
            try:
                self.loop.run(self.bot.edit_message_text(text, chat_id=chat,
                                                         message_id=message_id,
                                                         parse_mode=ParseMode.HTML))
            except BadRequest as exc:
                if "not modified" not in str(exc).lower():  # the same text again: done
                    raise

        def gone(exc: Exception) -> bool:
            return isinstance(exc, BadRequest) and any(
                words in str(exc).lower() for words in EDIT_GONE)

        send_live(delivery, post=post, edit=edit, gone=gone,
                  pin=lambda message_id: self.loop.run(self.bot.pin_chat_message(
                      chat, message_id, disable_notification=True)))

    # -- webhook endpoint -------------------------------------------------------------------

    def http_blueprint(self, handler: CommandHandler) -> Blueprint:
        platform = self
        blueprint = Blueprint("telegram", __name__)

        @blueprint.post("/telegram/<path:secret_path>")
        def telegram_webhook(secret_path: str):
            expected = platform.webhook_path
            if not expected or not hmac.compare_digest(secret_path.encode(), expected.encode()):
                abort(404)
            token = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
            if not hmac.compare_digest(token.encode(), platform.webhook_secret.encode()):
                abort(401)
            try:
                data = load(request.get_data(cache=False), UPDATE, "the update")
            except BadPayload as exc:
                return jsonify(error=str(exc)), 400
            try:
                platform.process_update(data, handler)
            except Exception:  # answer 200 anyway: Telegram would resend the same update
                log.exception("telegram: update %s could not be handled", data.get("update_id"))
            return "", 200

        return blueprint
