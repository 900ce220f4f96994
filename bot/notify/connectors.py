"""Outbound connectors for Slurm notifications: one small class per service.

Each ``send(target, payload)`` either returns (the service accepted the message) or raises
``DeliveryError`` — with ``retry_after`` when the service said when to come back, ``permanent``
when no retry can help. A connector never reports failure as success (goslmailer's worst bug),
and never logs its token. Base URLs/hosts come from the environment so stand-ins can replace them.
The chat platforms' own clients are reused: slack_sdk's WebClient with Slack's error mapping,
python-telegram-bot's Bot, discord.py's REST client (which keeps Discord's per-route buckets).
"""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from chatops.notify.config import NotifyConfig
from chatops.platform import DeliveryError

TIMEOUT = 10.0


class Connector(Protocol):
    name: str

    def send(self, target: str, payload: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class SlackConnector:
    name = "slack"

    def __init__(self, token: str, api_url: str | None = None):
        from slack_sdk import WebClient

        base = (api_url or "https://slack.com/api/").rstrip("/") + "/"
        self.client = WebClient(token=token, base_url=base, timeout=int(TIMEOUT))

    def send(self, target: str, payload: Mapping[str, Any]) -> None:
        from slack_sdk.errors import SlackClientError

        from bot.slack.outbound import as_delivery_error

        try:
            self.client.chat_postMessage(channel=target, text=payload["text"],
                                         blocks=payload.get("blocks"), unfurl_links=False)
        except (SlackClientError, OSError) as exc:
            raise as_delivery_error(exc, "chat.postMessage") from exc

    def close(self) -> None:
        pass


class TelegramConnector:
    name = "telegram"

    def __init__(self, token: str, api_url: str | None = None):
        from telegram import Bot
        from telegram.request import HTTPXRequest

        from bot.asyncloop import LoopThread

        base = (api_url or "https://api.telegram.org").rstrip("/")
        # One pool shared by every sender thread: PTB's default of one connection would
        # serialise them.
        self.bot = Bot(token, base_url=f"{base}/bot",
                       request=HTTPXRequest(connection_pool_size=64, read_timeout=TIMEOUT))
        self.loop = LoopThread("notify-telegram")

    def send(self, target: str, payload: Mapping[str, Any]) -> None:
        from telegram.constants import ParseMode
        from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

        from bot.telegram.platform import retry_seconds
        from bot.telegram.send import NO_PREVIEW

        try:
            self.loop.run(self.bot.send_message(target, payload["text"],
                                                parse_mode=ParseMode.HTML,
                                                link_preview_options=NO_PREVIEW))
        except RetryAfter as exc:
            wait = retry_seconds(exc)
            raise DeliveryError(f"Telegram asked to wait {wait:g} s", retry_after=wait) from exc
        except (Forbidden, BadRequest) as exc:
            raise DeliveryError(f"Telegram refused the message: {exc}", permanent=True) from exc
        except (TelegramError, TimeoutError) as exc:
            raise DeliveryError(f"Telegram error: {exc}") from exc

    def close(self) -> None:
        self.loop.close()


class DiscordConnector:
    name = "discord"

    def __init__(self, token: str, api_url: str | None = None):
        from bot.discord.client import DiscordRest

        self.rest = DiscordRest(token, api_url)

    def send(self, target: str, payload: Mapping[str, Any]) -> None:
        import discord

        from bot.discord.client import Throttled, post_message

        try:
            self.rest.run(post_message, target, payload["text"][:2000])
        except Throttled as exc:
            raise DeliveryError(str(exc), retry_after=exc.retry_after) from exc
        except (discord.Forbidden, discord.NotFound) as exc:
            raise DeliveryError(f"Discord refused the message: {exc}", permanent=True) from exc
        except discord.HTTPException as exc:
            raise DeliveryError(f"Discord error: HTTP {exc.status}",
                                permanent=400 <= exc.status < 500) from exc
        except (OSError, TimeoutError) as exc:
            raise DeliveryError(f"Discord unreachable: {type(exc).__name__}") from exc

    def close(self) -> None:
        self.rest.close()


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


class TeamsConnector:
    """One Teams channel (the sink): the card mentions the target user."""

    name = "msteams"

    def __init__(self, webhook_url: str):
        self.url = webhook_url
        self.http = httpx.Client(timeout=TIMEOUT)

    def send(self, target: str, payload: Mapping[str, Any]) -> None:
        body = json.dumps(payload["card"])  # data to JSON, never text substitution
        try:
            response = self.http.post(self.url, content=body,
                                      headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:  # the URL holds a secret: say only what went wrong
            raise DeliveryError(f"Teams webhook unreachable: {type(exc).__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise DeliveryError(f"Teams webhook answered HTTP {response.status_code}",
                                retry_after=_retry_after(response))
        if response.status_code >= 400:
            raise DeliveryError(f"Teams webhook answered HTTP {response.status_code}",
                                permanent=True)

    def close(self) -> None:
        self.http.close()


class MailConnector:
    """SMTP: one multipart (text + HTML) message per target, STARTTLS and login when set."""

    name = "mailto"

    def __init__(self, environ: Mapping[str, str]):
        self.host = environ.get("CHATOPS_SMTP_HOST") or "localhost"
        self.port = int(environ.get("CHATOPS_SMTP_PORT") or 25)
        self.user = environ.get("CHATOPS_SMTP_USER") or None
        self.password = environ.get("CHATOPS_SMTP_PASSWORD") or None
        self.starttls = (environ.get("CHATOPS_SMTP_STARTTLS") or "").lower() in ("1", "true",
                                                                                 "yes")
        self.sender = environ.get("CHATOPS_SMTP_FROM") or "chatops@localhost"

    def send(self, target: str, payload: Mapping[str, Any]) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, target, payload["subject"]
        msg.set_content(payload["text"])
        msg.add_alternative(payload["html"], subtype="html")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user and self.password:
                    smtp.login(self.user, self.password)
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"the mail server refused {target}", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP error {exc.smtp_code}",
                                permanent=500 <= exc.smtp_code < 600) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        pass


def build_connectors(environ: Mapping[str, str], cfg: NotifyConfig) -> dict[str, Connector]:
    """Every connector whose credentials are set."""
    out: dict[str, Connector] = {}
    if environ.get("SLACK_BOT_TOKEN"):
        out["slack"] = SlackConnector(environ["SLACK_BOT_TOKEN"], environ.get("SLACK_API_URL"))
    if environ.get("TELEGRAM_BOT_TOKEN"):
        out["telegram"] = TelegramConnector(environ["TELEGRAM_BOT_TOKEN"],
                                            environ.get("TELEGRAM_API_URL"))
    if environ.get("DISCORD_BOT_TOKEN"):
        out["discord"] = DiscordConnector(environ["DISCORD_BOT_TOKEN"],
                                          environ.get("DISCORD_API_URL"))
    if environ.get(cfg.teams_webhook_env):
        out["msteams"] = TeamsConnector(environ[cfg.teams_webhook_env])
    if environ.get("CHATOPS_SMTP_HOST"):
        out["mailto"] = MailConnector(environ)
    if environ.get("MATRIX_HOMESERVER_URL"):  # bot/matrix: m.notice with HTML, via matrix-nio
        from bot.matrix.client import MatrixConnector, is_configured
        from chatops.settings import load_settings

        if is_configured(load_settings(environ)):
            out["matrix"] = MatrixConnector.from_environ(environ)
    return out
