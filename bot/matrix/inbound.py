"""The Matrix bot: what it does with each sync — invites, people leaving, commands.

- Invited to a room: join it, post ``--mail-user=matrix:<room id>`` there and record the room's
  opt-in (connector ``matrix``) for the inviter.
- Someone left and the bot is alone: leave the room and record the opt-out (also when the bot
  is kicked or banned).
- A message addressed to the bot — ``!run <command>``, ``!help``, ``!status``, or one that
  mentions the bot — goes to the CommandHandler; the answer is posted as notices (or 👀 on the
  message when a job was accepted without a word). Everything else is other people's talk.

Messages from before the bot started (the first sync) are history, never commands; invites
received while it was away are still accepted.
"""

from __future__ import annotations

import asyncio
import logging
import re

from nio import (
    AsyncClient,
    ErrorResponse,
    InviteMemberEvent,
    JoinedMembersResponse,
    RoomMemberEvent,
    RoomMessageText,
    SyncResponse,
)

from bot.matrix.client import notice_content, react, send_content
from bot.matrix.send import Sender
from bot.render import Piece, clean_command, response_pieces
from chatops import identities
from chatops.commands import CommandHandler, Incoming
from chatops.events import Requester
from chatops.platform import DeliveryError

log = logging.getLogger("chatops.matrix")

BANG_BUILTINS = ("help", "status", "cancel", "logs")
ACCEPTED = "👀"


def mail_user_content(room_id: str) -> dict:
    target = f"--mail-user=matrix:{room_id}"
    body = (f"To get Slurm's notifications about your jobs in this room, submit them with:\n"
            f"{target}\n(and --mail-type=END,FAIL, or ALL, to choose which). "
            "I leave when everyone else has left. !help lists what else I can do.")
    html = ("To get Slurm's notifications about your jobs in this room, submit them with:"
            f"<pre><code>{target}</code></pre>(and <code>--mail-type=END,FAIL</code>, or "
            "<code>ALL</code>, to choose which). I leave when everyone else has left. "
            "<code>!help</code> lists what else I can do.")
    return notice_content(body, html)


def command_of(event: RoomMessageText, user_id: str) -> str | None:
    """The command in a message addressed to the bot, or None when it is not."""
    body = (event.body or "").strip()
    if body.startswith("!"):
        word, _, rest = body[1:].partition(" ")
        word = word.lower()
        if word == "run":
            return rest.strip()
        if word in BANG_BUILTINS:
            return f"{word} {rest}".strip()
        return None
    content = event.source.get("content", {})
    mentioned = user_id in (content.get("m.mentions") or {}).get("user_ids", [])
    localpart = user_id[1:].split(":", 1)[0]
    # Clients put the display name (a pill) first: "chatops: example say hello"; the name must
    # end there ("chatopsy" or "chatops:example.org" is someone else).
    name = rf"(?:{re.escape(user_id)}|@?{re.escape(localpart)})(?![\w.-]|:\S)"
    pattern = re.compile(rf"^\s*{name}\s*[:,]?\s*", re.I)
    stripped, count = pattern.subn("", body, count=1)
    if count:
        return stripped.strip()
    if mentioned:
        return re.sub(rf"\s*{re.escape(user_id)}[:,]?\s*", " ", body, count=1).strip(" ,:")
    return None


class Inbound:
    def __init__(self, client: AsyncClient, handler: CommandHandler,
                 trusted_rooms: frozenset[str]):
        self.client = client
        self.handler = handler
        self.engine = handler.queue.engine
        self.trusted_rooms = trusted_rooms

    async def on_sync(self, response: SyncResponse, first: bool) -> None:
        me = self.client.user_id
        for room_id, info in response.rooms.invite.items():
            inviter = next((e.sender for e in info.invite_state
                            if isinstance(e, InviteMemberEvent) and e.state_key == me
                            and e.membership == "invite"), None)
            await self._guard(self.on_invite(room_id, inviter), room_id)
        for room_id in response.rooms.leave:  # kicked or banned: the room wants no more
            await self._guard(asyncio.to_thread(identities.opt_out, self.engine, "matrix",
                                                room_id), room_id)
        for room_id, info in response.rooms.join.items():
            events = [*info.state, *info.timeline.events]
            if first or any(isinstance(e, RoomMemberEvent) for e in events):
                await self._guard(self.leave_if_alone(room_id), room_id)
            if first:
                continue
            for event in info.timeline.events:
                if isinstance(event, RoomMessageText) and event.sender != me:
                    await self._guard(self.on_message(room_id, event), room_id)

    async def _guard(self, coro, room_id: str) -> None:
        """One room's trouble is logged; the bot carries on with the others."""
        try:
            await coro
        except Exception:
            log.exception("matrix: handling an event in %s failed", room_id)

    async def on_invite(self, room_id: str, inviter: str | None) -> None:
        response = await self.client.join(room_id)
        if isinstance(response, ErrorResponse):
            log.warning("matrix: cannot join %s: %s", room_id, response.message)
            return
        log.info("matrix: joined %s (invited by %s)", room_id, inviter)
        if inviter:
            await asyncio.to_thread(identities.record, self.engine, "matrix", inviter)
        await asyncio.to_thread(identities.opt_in, self.engine, "matrix", room_id, inviter)
        await send_content(self.client, room_id, mail_user_content(room_id))

    async def leave_if_alone(self, room_id: str) -> None:
        members = await self.client.joined_members(room_id)
        if not isinstance(members, JoinedMembersResponse):
            return
        if any(m.user_id != self.client.user_id for m in members.members):
            return
        await self.client.room_leave(room_id)
        await self.client.room_forget(room_id)
        await asyncio.to_thread(identities.opt_out, self.engine, "matrix", room_id)
        log.info("matrix: left %s, where no one else was", room_id)

    async def on_message(self, room_id: str, event: RoomMessageText) -> None:
        text = command_of(event, self.client.user_id)
        if text is None:
            return
        room = self.client.rooms.get(room_id)
        direct = room is not None and room.member_count == 2
        who = Requester(platform="matrix", user=event.sender, channel=room_id,
                        message=event.event_id, is_direct=direct,
                        user_name=room.user_name(event.sender) if room else None,
                        is_guest=False if room_id in self.trusted_rooms else None)
        await asyncio.to_thread(identities.record, self.engine, "matrix", who.user,
                                who.user_name)
        response = await asyncio.to_thread(self.handler.handle,
                                           Incoming(who, clean_command(text)))
        pieces: list[Piece] = response_pieces(response, announce_job=False)
        if not pieces and response.acknowledged:
            try:
                await react(self.client, room_id, event.event_id, ACCEPTED)
                return
            except DeliveryError:  # reactions refused here: say it instead
                pieces = response_pieces(response)
        await Sender(self.client, room_id, reply_to=None if direct else event.event_id,
                     ).pieces(pieces)

