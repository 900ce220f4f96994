"""The Slack platform: a Bolt app for commands (Socket Mode, or the Events API over HTTP at
``POST /slack/events``) and a Web API client for reports.

Inbound, a mention or a direct message becomes an ``Incoming`` for the ``CommandHandler``; a
recognised command gets one acknowledgement reaction, and the handler's replies go to the
requester's thread. Outbound, ``deliver`` renders a queued report (see ``outbound.py``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlparse

from flask import Blueprint, Response, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier

from bot.slack import config
from bot.slack.config import SlackSettings
from bot.slack.inbound import SlackMessage, escape, parse_event
from bot.slack.outbound import Sender, split_text
from bot.slack.schema import ENVELOPE, EVENT, INTERACTIVE
from bot.slack.users import UserDirectory
from chatops.calc.submit import Attachment, download
from chatops.commands import CommandHandler, Incoming
from chatops.commands import Response as CommandResponse
from chatops.events import Requester
from chatops.payloads import BadPayload, check, parse_json
from chatops.platform import Delivery, Platform
from chatops.service import Service

log = logging.getLogger("chatops.slack")

MAX_EVENT_BYTES = 1024 * 1024


class _QuietTokenWarning(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN in the environment is unused when it is given a client;
    that is intended here (the client carries SLACK_API_URL), so the warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.App").addFilter(_QuietTokenWarning())
SEEN_EVENTS = 2000  # Slack re-sends an event it thinks was not acknowledged; handle it once


class SlackPlatform(Platform):
    name = "slack"

    def __init__(self, slack: SlackSettings, identity: dict[str, Any]):
        token = config.require_bot_token(slack)
        self.slack = slack
        self.bot_user_id: str | None = identity.get("user_id")
        # Deliveries: no SDK retries, the outbox reschedules (honouring Retry-After) instead.
        self.client = WebClient(token=token, base_url=slack.api_url, retry_handlers=[])
        # Replies to a command are sent at once; let the SDK wait out a short rate limit.
        self.reply_client = WebClient(
            token=token, base_url=slack.api_url,
            retry_handlers=[ConnectionErrorRetryHandler(), RateLimitErrorRetryHandler(2)])
        self.sender = Sender(self.client, slack)
        self.users = UserDirectory(self.reply_client)
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._seen_lock = threading.Lock()

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def is_configured(cls, settings: Any) -> bool:
        return config.is_configured(settings)

    @classmethod
    def create(cls, service: Service) -> SlackPlatform:
        """Check the tokens against Slack (a bad one stops start-up) and build the platform."""
        slack = SlackSettings.from_settings(service.settings)
        token = config.require_bot_token(slack)
        identity = config.check_bot_token(
            WebClient(token=token, base_url=slack.api_url, retry_handlers=[]), slack.api_url)
        if slack.app_token:
            config.check_app_token(slack.app_token, slack.api_url)
        if not slack.app_token and not slack.signing_secret:
            log.warning("neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (events "
                        "over HTTP) is set: Slack reports are sent, but no commands arrive")
        log.info("Slack: signed in as %s (%s) in %s", identity.get("user"),
                 identity.get("user_id"), identity.get("team"))
        return cls(slack, identity)

    def bolt_app(self, handler: CommandHandler) -> App:
        """The Bolt app that turns mentions and direct messages into commands."""
        app = App(client=self.reply_client, signing_secret=self.slack.signing_secret or "",
                  token_verification_enabled=False,
                  request_verification_enabled=bool(self.slack.signing_secret),
                  process_before_response=False)

        @app.event("app_mention")
        def on_mention(event: dict[str, Any], body: dict[str, Any]) -> None:
            self.on_event(event, handler, body.get("team_id"))

        @app.event("message")
        def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
            self.on_event(event, handler, body.get("team_id"))

        return app

    # -- inbound ----------------------------------------------------------------------------

    def on_event(self, event: dict[str, Any], handler: CommandHandler,
                 team: str | None = None) -> None:
        try:  # over HTTP the envelope was checked already; Socket Mode's arrive here first
            check(event, EVENT, "the Slack event")
        except BadPayload as exc:
            log.warning("slack: ignored a malformed event: %s", exc)
            return
        message = parse_event(event, self.bot_user_id)
        if message is None or self._already_seen(message):
            return
        user = self.users.get(message.user)
        requester = Requester(
            platform=self.name, user=message.user, channel=message.channel,
            thread=message.thread_ts or message.ts, message=message.ts,
            is_direct=message.is_direct, user_name=user.name, is_guest=user.is_guest,
            workspace=team or event.get("team"))
        log.info("slack: %s in %s asks %r", user.name or message.user, message.channel,
                 message.text)
        attachment = self.attachment(event)
        if attachment is not None and not message.text.lower().startswith("run"):
            message = replace(message, text=f"run {message.text}".strip())
        try:
            response = handler.handle(Incoming(requester, message.text, attachment))
        except Exception:  # a bug or the database: say so rather than stay silent
            log.exception("slack: handling %r from %s failed", message.text, message.user)
            response = CommandResponse(understood=False).say(
                "Sorry, something went wrong while handling that; the details are in the "
                "bot's log. Please try again, or tell an admin if it keeps happening.")
        self.answer(message, requester, response)

    def attachment(self, event: dict[str, Any]) -> Attachment | None:
        """The first file shared with a command (a calculation's input), fetched from Slack
        with the bot token (scope files:read) only from Slack's own file host."""
        shared = event.get("files") or []
        if not shared or not isinstance(shared[0], dict):
            return None
        item = shared[0]
        return download("Slack", str(item.get("name") or ""), item.get("size"),
                        item.get("url_private_download") or item.get("url_private") or "",
                        {"files.slack.com", urlparse(self.slack.api_url).netloc},
                        {"Authorization": f"Bearer {self.client.token}"})

    def answer(self, message: SlackMessage, requester: Requester,
               response: CommandResponse) -> None:
        """The acknowledgement reaction, then the replies in the right thread."""
        try:
            if response.acknowledged:
                self.reply_client.reactions_add(channel=message.channel, timestamp=message.ts,
                                                name=self.slack.ack_reaction)
            # Answers about a command go where its report will; help and the like go to the
            # thread the question was asked in, if any.
            thread = requester.thread if response.acknowledged else message.thread_ts
            for reply in response.replies:
                for part in split_text(reply.text):  # e.g. a long `logs` tail
                    text = f"```\n{escape(part)}\n```" if reply.code else escape(part)
                    self.reply_client.chat_postMessage(channel=message.channel,
                                                       thread_ts=thread, text=text,
                                                       unfurl_links=False)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.error("could not answer %s in %s: %s", message.ts, message.channel, exc)

    def _already_seen(self, message: SlackMessage) -> bool:
        key = (message.channel, message.ts)
        with self._seen_lock:
            if key in self._seen:
                return True
            self._seen[key] = None
            if len(self._seen) > SEEN_EVENTS:
                self._seen.popitem(last=False)
        return False

    def serve(self, handler: CommandHandler, stop: threading.Event) -> None:
        """Socket Mode when an app-level token is set; else events come over HTTP."""
        if not self.slack.app_token:
            log.info("Slack: no SLACK_APP_TOKEN, so commands arrive over HTTP at "
                     "POST /slack/events (chatops web)")
            stop.wait()
            return
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        socket_mode = SocketModeHandler(
            self.bolt_app(handler), self.slack.app_token,
            web_client=WebClient(base_url=self.slack.api_url))
        delay = 1.0
        while not stop.is_set():
            try:
                socket_mode.connect()
                break
            except Exception as exc:  # Slack unreachable: keep trying; once up, it reconnects
                log.error("Slack: Socket Mode connection failed (%s); retrying in %.0f s",
                          exc, delay)
                stop.wait(delay)
                delay = min(60.0, delay * 2)
        else:
            return
        log.info("Slack: connected in Socket Mode")
        try:
            stop.wait()
        finally:
            socket_mode.close()

    # -- over HTTP --------------------------------------------------------------------------

    def http_blueprint(self, handler: CommandHandler) -> Blueprint:
        """``POST /slack/events``: Slack's Events API, each request's signature checked first."""
        blueprint = Blueprint("slack", __name__)
        secret = self.slack.signing_secret
        verifier = SignatureVerifier(secret) if secret else None
        adapter = SlackRequestHandler(self.bolt_app(handler)) if secret else None

        @blueprint.post("/slack/events")
        def events() -> Any:
            if verifier is None or adapter is None:
                return Response("Slack events over HTTP are off: set SLACK_SIGNING_SECRET.\n",
                                status=503, mimetype="text/plain")
            if (request.content_length or 0) > MAX_EVENT_BYTES:
                return Response("too large\n", status=413, mimetype="text/plain")
            try:  # Slack sends UTF-8, and its verifier cannot read anything else
                body = request.get_data(cache=True).decode("utf-8")
            except UnicodeDecodeError:
                return Response("the body is not UTF-8 text\n", status=400,
                                mimetype="text/plain")
            stamp = request.headers.get("X-Slack-Request-Timestamp", "")
            if not stamp.isdigit() or not verifier.is_valid(
                    body, stamp, request.headers.get("X-Slack-Signature", "")):
                return Response("invalid or expired signature\n", status=401,
                                mimetype="text/plain")
            try:
                check_body(body, request.mimetype)
            except BadPayload as exc:
                return Response(f"{exc}\n", status=400, mimetype="text/plain")
            return adapter.handle(request)

        return blueprint

    # -- outbound ---------------------------------------------------------------------------

    def deliver(self, delivery: Delivery) -> None:
        self.sender.deliver(delivery)


def check_body(text: str, mimetype: str) -> None:
    """Raise BadPayload unless Bolt can read ``text``: JSON as Bolt takes it (by content type,
    or a body starting with ``{``) must be an Events API envelope; a form's ``payload`` field
    an interactive payload."""
    if mimetype == "application/json" or text.lstrip().startswith(("{", "[")):
        check(parse_json(text), ENVELOPE, "the event")
        return
    payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
    if payload is not None:
        check(parse_json(payload), INTERACTIVE, "the interactive payload")

