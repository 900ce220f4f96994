"""The Discord platform: slash commands by HTTP interactions, reports by the REST API.

No gateway connection: commands arrive at the web server (``http_blueprint``), so ``serve``
has nothing to do. A gateway bot (plain messages, trigger words) is not implemented.

Settings: DISCORD_BOT_TOKEN, DISCORD_APPLICATION_ID, DISCORD_PUBLIC_KEY (hex, from the
developer portal), DISCORD_API_URL (default https://discord.com/api/v10),
DISCORD_TRUSTED_GUILDS (comma-separated server ids whose members may use restricted
namespaces).
"""

from __future__ import annotations

import logging
import threading
from typing import ClassVar

import aiohttp
import discord
from flask import Blueprint
from nacl.signing import VerifyKey

from bot.discord import client
from bot.discord.interactions import COMMANDS, blueprint
from bot.discord.send import FILE_LIMIT, Out, Sender, outs
from bot.live import send_live
from bot.render import Piece, delivery_pieces, upload_limit
from chatops.commands import CommandHandler
from chatops.notify.render import for_platform, templates_dir
from chatops.platform import Delivery, DeliveryError, Platform
from chatops.service import Service, SetupError
from chatops.settings import Settings

log = logging.getLogger("chatops.discord")

REQUIRED = ("DISCORD_BOT_TOKEN", "DISCORD_APPLICATION_ID", "DISCORD_PUBLIC_KEY")


class DiscordPlatform(Platform):
    name = "discord"
    lease_seconds: ClassVar[float] = 120.0  # within the minutes Discord honours a nonce

    def __init__(self, service: Service):
        self.service = service
        settings = service.settings
        missing = [n for n in REQUIRED if not settings.secret(n)]
        if missing:
            raise SetupError(f"Discord needs {' and '.join(missing)} (from the application's "
                             "page in the developer portal; see DEPLOY.md, section Discord)")
        self.application_id = settings.secret("DISCORD_APPLICATION_ID") or ""
        try:
            self.public_key = VerifyKey(bytes.fromhex(settings.secret("DISCORD_PUBLIC_KEY")))
        except ValueError:
            raise SetupError("DISCORD_PUBLIC_KEY must be the application's public key in hex "
                             "(64 characters, General Information → Public Key)") from None
        self.api_url = settings.environ.get("DISCORD_API_URL") or client.DEFAULT_API_URL
        self.file_limit = upload_limit(settings.environ, "discord", FILE_LIMIT)
        self.trusted_guilds = frozenset(
            g.strip() for g in settings.environ.get("DISCORD_TRUSTED_GUILDS", "").split(",")
            if g.strip())
        self.rest = client.DiscordRest(settings.secret("DISCORD_BOT_TOKEN") or "",
                                       settings.environ.get("DISCORD_API_URL"))

    @classmethod
    def is_configured(cls, settings: Settings) -> bool:
        return all(settings.secret(n) for n in REQUIRED)

    @classmethod
    def missing_settings(cls, settings: Settings) -> list[str]:
        missing = [n for n in REQUIRED if not settings.secret(n)]
        return missing if len(missing) < len(REQUIRED) else []

    def check(self) -> None:
        """Log in to the REST API with the token: a refused token or a wrong URL stops start-up."""
        try:
            self.rest.run(client.who_am_i)
        except discord.LoginFailure:
            raise SetupError("DISCORD_BOT_TOKEN was refused by Discord: copy the bot's token "
                             "(Bot → Reset Token) from the developer portal") from None
        except (aiohttp.ClientError, discord.HTTPException, OSError, TimeoutError) as exc:
            raise SetupError(f"cannot reach the Discord API at {self.api_url} to check "
                             f"DISCORD_BOT_TOKEN: {type(exc).__name__}: {exc} (is "
                             "DISCORD_API_URL right?)") from None

    def http_blueprint(self, handler: CommandHandler) -> Blueprint:
        return blueprint(self, handler)

    def serve(self, handler: CommandHandler, stop: threading.Event) -> None:
        log.info("discord: slash commands arrive at POST /discord/interactions")
        stop.wait()

    def close(self) -> None:
        self.rest.close()

    def register_commands(self) -> list[str]:
        """Create or update the global slash commands /run, /help, /status, /mailuser."""
        registered = self.rest.run(client.put_commands, self.application_id, COMMANDS)
        return [command["name"] for command in registered]

    # -- answers to interactions ------------------------------------------------------------

    def answer_interaction(self, token: str, pieces: list[Piece]) -> None:
        """Replace the deferred "thinking…" message with the answer; more parts follow up."""
        items = outs(pieces, "output.txt")

        async def run_all(http: discord.http.HTTPClient) -> None:
            async def send(item: Out) -> None:
                call = client.edit_original if sender.sent == 0 else client.follow_up
                await call(http, self.application_id, token, item.content, item.file())

            sender = Sender(send)
            await sender.all(items)

        self.rest.run(run_all)

    # -- outbound ---------------------------------------------------------------------------

    def deliver(self, delivery: Delivery) -> None:
        if not delivery.channel:
            raise DeliveryError("no Discord channel to deliver to", permanent=True)
        report = delivery.report
        name = f"{report.job_type}-{report.job_id}.txt" if report else "message.txt"
        channel = delivery.channel

        async def run_all(http: discord.http.HTTPClient) -> None:
            async def send(item: Out) -> None:
                await client.post_message(http, channel, item.content, item.file(),
                                          nonce=_nonce(delivery, sender.sent))

            sender = Sender(send, skip=delivery.progress.get("sent", 0),
                            on_sent=lambda sent: delivery.record("sent", sent))
            await sender.all(items)

        try:
            if delivery.payload.get("kind") == "slurm":
                self._slurm(delivery)
                return
            if delivery.payload.get("kind") == "live":
                self._live(delivery)
                return
            items = outs(delivery_pieces(delivery.payload), name, self.file_limit)
            if items:
                self.rest.run(run_all)
        except client.Throttled as exc:
            raise DeliveryError(f"Discord asked to wait {exc.retry_after:g} s "
                                "(429 Too Many Requests)", retry_after=exc.retry_after) from exc
        except (discord.Forbidden, discord.NotFound) as exc:  # no access, no such channel
            raise DeliveryError(f"Discord refused the message: {exc}", permanent=True) from exc
        except discord.DiscordServerError as exc:
            raise DeliveryError(f"Discord server error: {exc}") from exc
        except discord.HTTPException as exc:  # another 4xx: the request itself is wrong
            raise DeliveryError(f"Discord rejected the message: {exc}", permanent=True) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"cannot reach Discord: {exc}") from exc
        except OSError as exc:  # the report's file cannot be read here
            raise DeliveryError(f"cannot read the report's file: {exc}", permanent=True) from exc

    def _slurm(self, delivery: Delivery) -> None:
        """A Slurm notification: one message from the Discord templates."""
        if delivery.progress.get("sent"):
            return
        text = for_platform("discord", delivery.channel or "", delivery.payload,
                            templates_dir(self.service.settings.environ))["text"]
        self.rest.run(client.post_message, delivery.channel, text[:2000],
                      nonce=_nonce(delivery, 0))
        delivery.record("sent", 1)

    def _live(self, delivery: Delivery) -> None:
        """Post a message that changes, or edit it (PATCH) with its newest text; a board is
        pinned (the Pin Messages / Manage Messages permission)."""
        text = delivery.payload.get("text", "")[:2000]
        channel = delivery.channel

        def post(replacing: str | None) -> str:
            # A new board for a deleted one gets its own nonce (from the deleted one's id), so
            # Discord does not take it for the first; the same on every retry.
            nonce = (_nonce(delivery, 0) if replacing is None
                     else f"{delivery.id}.r{str(replacing)[-12:]}"[:25])
            return str(self.rest.run(client.post_message, channel, text, nonce=nonce)["id"])

        send_live(delivery, post=post,
                  edit=lambda message: self.rest.run(client.edit_message, channel, message, text),
                  gone=lambda exc: isinstance(exc, discord.NotFound),
                  pin=lambda message: self.rest.run(client.pin_message, channel, message))


def _nonce(delivery: Delivery, index: int) -> str:
    """The same for every attempt at one message of a delivery (at most 25 characters): with
    ``enforce_nonce`` Discord keeps one message when a sender that died resends it."""
    return f"{delivery.id}.{str(delivery.payload.get('kind', 'm'))[:2]}.{index}"[:25]
