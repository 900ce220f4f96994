"""The Matrix platform: a matrix-nio client that syncs for commands and sends job reports.

``serve`` long-polls ``/sync`` (see ``bot.matrix.inbound`` for what the bot does with it);
``deliver`` posts a report or notice to a room as ``m.notice`` events with HTML (code in
``<pre><code>``, blocks as text, files uploaded as ``m.file``). One client on one event loop
serves both, so the sync and the outbox share the login.

Settings (see ``bot.matrix.client``): MATRIX_HOMESERVER_URL, MATRIX_USER_ID,
MATRIX_ACCESS_TOKEN or MATRIX_PASSWORD, MATRIX_DEVICE_ID; MATRIX_TRUSTED_ROOMS (comma-separated
room ids whose members may use restricted namespaces).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading

import aiohttp
from nio import SyncResponse, WhoamiResponse

from bot.asyncloop import LoopThread
from bot.live import send_live
from bot.matrix import client as mx
from bot.matrix.inbound import Inbound
from bot.matrix.send import FILE_LIMIT, Sender
from bot.render import delivery_pieces, upload_limit
from chatops.commands import CommandHandler
from chatops.notify.render import for_platform, templates_dir
from chatops.platform import Delivery, DeliveryError, Platform
from chatops.service import Service, SetupError
from chatops.settings import Settings

log = logging.getLogger("chatops.matrix")

SYNC_TIMEOUT_MS = 25_000  # how long one /sync long poll may wait for news
QUIET_SUCCESS = "👍"


class MatrixPlatform(Platform):
    name = "matrix"

    def __init__(self, service: Service):
        self.service = service
        self.settings = service.settings
        self.client = mx.new_client(self.settings)
        self.file_limit = upload_limit(self.settings.environ, "matrix", FILE_LIMIT)
        self.trusted_rooms = frozenset(
            r.strip() for r in self.settings.environ.get("MATRIX_TRUSTED_ROOMS", "").split(",")
            if r.strip())
        self.loop = LoopThread("matrix-loop")
        self._login = asyncio.Lock()  # the sync and the outbox may both start first

    @classmethod
    def is_configured(cls, settings: Settings) -> bool:
        return mx.is_configured(settings)

    @classmethod
    def missing_settings(cls, settings: Settings) -> list[str]:
        names = (*mx.REQUIRED, "MATRIX_ACCESS_TOKEN", "MATRIX_PASSWORD")
        return mx.missing_settings(settings) if any(settings.secret(n) for n in names) else []

    def check(self) -> None:
        """Log in (or ask who the token belongs to): refused credentials stop start-up."""
        url = self.settings.environ["MATRIX_HOMESERVER_URL"]
        try:
            self.loop.run(self._log_in())
            answer = self.loop.run(self.client.whoami())
        except mx.MatrixLoginError as exc:
            raise SetupError(f"{exc}: check MATRIX_USER_ID and MATRIX_PASSWORD") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise SetupError(f"cannot reach the Matrix homeserver at {url}: "
                             f"{type(exc).__name__}: {exc} (is MATRIX_HOMESERVER_URL "
                             "right?)") from None
        if not isinstance(answer, WhoamiResponse):
            raise SetupError(f"the homeserver at {url} refused MATRIX_ACCESS_TOKEN "
                             f"({answer.status_code}: {answer.message}): log in again for a "
                             "new token (see DEPLOY.md, section Matrix)")

    async def _log_in(self) -> None:
        async with self._login:  # log in once, with one device
            await mx.log_in(self.client, self.settings)

    # -- inbound ----------------------------------------------------------------------------

    def serve(self, handler: CommandHandler, stop: threading.Event) -> None:
        inbound = Inbound(self.client, handler, self.trusted_rooms)
        future = asyncio.run_coroutine_threadsafe(self._sync_loop(inbound, stop),
                                                  self.loop.loop)
        try:
            stop.wait()
        finally:
            future.cancel()
            try:
                future.result(10)
            except BaseException:
                pass

    async def _sync_loop(self, inbound: Inbound, stop: threading.Event) -> None:
        first = True
        while not stop.is_set():
            try:
                await self._log_in()
                response = await self.client.sync(
                    timeout=0 if first else SYNC_TIMEOUT_MS, since=self.client.next_batch,
                    full_state=first or None)
            except (aiohttp.ClientError, TimeoutError, mx.MatrixLoginError) as exc:
                log.warning("matrix: cannot sync (%s); retrying in 10 s", exc)
                await asyncio.sleep(10)
                continue
            except Exception:  # an SDK surprise must not end the bot silently
                log.exception("matrix: sync failed; retrying in 10 s")
                await asyncio.sleep(10)
                continue
            if not isinstance(response, SyncResponse):
                wait = (getattr(response, "retry_after_ms", None) or 5000) / 1000
                log.warning("matrix: sync failed (%s); retrying in %g s", response.message, wait)
                await asyncio.sleep(wait)
                continue
            if first:
                log.info("matrix: syncing as %s", self.client.user_id)
            await inbound.on_sync(response, first)
            first = False

    def close(self) -> None:
        self.loop.run(self.client.close())
        self.loop.close()

    # -- outbound ---------------------------------------------------------------------------

    def deliver(self, delivery: Delivery) -> None:
        room_id = delivery.channel
        if not room_id or not room_id.startswith("!"):
            raise DeliveryError(f"no Matrix room to deliver to ({room_id!r})", permanent=True)
        pieces = delivery_pieces(delivery.payload)
        report = delivery.report
        name = f"{report.job_type}-{report.job_id}.txt" if report else "message.txt"
        reply_to = delivery.message if delivery.message and not delivery.is_direct else None
        sender = Sender(self.client, room_id, reply_to=reply_to, file_name=name,
                        skip=delivery.progress.get("sent", 0),
                        on_sent=lambda sent: delivery.record("sent", sent),
                        txn=_txn(delivery), file_limit=self.file_limit)
        try:
            self.loop.run(self._log_in())
            if delivery.payload.get("kind") == "slurm":
                self._slurm(delivery)
            elif delivery.payload.get("kind") == "live":
                self._live(delivery)
            elif pieces:
                self.loop.run(sender.pieces(pieces))
            elif delivery.message:  # a quiet success: a reaction instead of a message
                self.loop.run(mx.react(self.client, room_id, delivery.message, QUIET_SUCCESS))
        except mx.MatrixLoginError as exc:
            raise DeliveryError(str(exc)) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"cannot reach the Matrix homeserver: {exc}") from exc
        except OSError as exc:  # the report's file cannot be read here
            raise DeliveryError(f"cannot read the report's file: {exc}", permanent=True) from exc

    def _live(self, delivery: Delivery) -> None:
        """Post a message that changes, or replace it (an m.replace event) with its newest
        text; clients show the newest. A board is pinned (m.room.pinned_events)."""
        text = delivery.payload.get("text", "")
        room = delivery.channel or ""
        content = mx.notice_content(text, mx.inline_html(text))

        def post(replacing: str | None) -> str:
            # a new board for a redacted one: its own transaction id, the same on every retry
            txn = f"{_txn(delivery)}-live"
            if replacing is not None:
                txn += f"-{hashlib.sha256(replacing.encode()).hexdigest()[:12]}"
            return self.loop.run(mx.send_content(self.client, room, content, txn))

        def edit(posted: str) -> None:
            if self.loop.run(mx.redacted(self.client, room, posted)):
                raise mx.Gone(f"event {posted} was redacted")
            self.loop.run(mx.send_content(self.client, room, {
                **mx.notice_content(f"* {text}", f"* {mx.inline_html(text)}"),
                "m.new_content": content,
                "m.relates_to": {"rel_type": "m.replace", "event_id": posted}}))

        send_live(delivery, post=post, edit=edit, gone=lambda exc: isinstance(exc, mx.Gone),
                  pin=lambda posted: self.loop.run(mx.pin(self.client, room, posted)))

    def _slurm(self, delivery: Delivery) -> None:
        """A Slurm notification: one m.notice with the Matrix templates' text and HTML."""
        if delivery.progress.get("sent"):
            return
        message = for_platform("matrix", delivery.channel or "", delivery.payload,
                               templates_dir(self.settings.environ))
        body = str(message.get("text") or message.get("subject") or "")
        markup = message.get("html")
        formatted = mx.html_body(str(markup)) if markup else mx.inline_html(body)
        self.loop.run(mx.send_content(self.client, delivery.channel or "",
                                      mx.notice_content(body, formatted), f"{_txn(delivery)}-0"))
        delivery.record("sent", 1)


def _txn(delivery: Delivery) -> str:
    """The transaction id prefix of a delivery's messages: the same in every attempt, by any
    sender of this account (its row id is unique; the kind tells a report from the "could not
    deliver" notice sent for the same row)."""
    return f"chatops-{delivery.id}-{delivery.payload.get('kind', 'message')}"
