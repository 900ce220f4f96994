"""Discord slash commands over HTTP interactions: ``POST /discord/interactions``.

Every request is verified first — Ed25519 over ``timestamp + body`` with the application's
public key, and a timestamp no older than five minutes — and only then parsed. PING gets PONG.
``/mailuser`` is answered at once, privately (flags 64). ``/run``, ``/help`` and ``/status``
are deferred (type 5) and, once the response has gone out, handled and the "thinking…"
message is edited with the answer (PATCH …/messages/@original; more parts as follow-ups).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from urllib.parse import urlparse

from flask import Blueprint, Response, jsonify, request
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from bot.discord.schema import INTERACTION
from bot.render import Piece, clean_command, response_pieces
from chatops import identities
from chatops.calc.submit import Attachment, download
from chatops.commands import CommandHandler, Incoming
from chatops.events import Requester
from chatops.payloads import BadPayload, load

log = logging.getLogger("chatops.discord")

PING, APPLICATION_COMMAND = 1, 2
ATTACHMENT = 11  # an option type: a file sent with the command
ATTACHMENT_HOSTS = {"cdn.discordapp.com", "media.discordapp.net"}
PONG, CHANNEL_MESSAGE, DEFERRED = 1, 4, 5
EPHEMERAL = 64
MAX_AGE = 300  # seconds: an older signed request is a replay

COMMANDS: list[dict[str, Any]] = [
    {"name": "run", "type": 1, "description": "Run a command, e.g. example say hello Bob",
     "options": [{"type": 3, "name": "command", "description": "the command and its arguments "
                  "(with a file: [runner] [on cluster] [args…])", "required": False},
                 {"type": ATTACHMENT, "name": "file", "required": False,
                  "description": "an input file to run on a cluster (a calculation)"}]},
    {"name": "help", "type": 1, "description": "What I can do",
     "options": [{"type": 3, "name": "namespace", "description": "a namespace's commands",
                  "required": False}]},
    {"name": "status", "type": 1, "description": "Running and scheduled jobs"},
    {"name": "mailuser", "type": 1,
     "description": "The --mail-user switch that sends Slurm's notifications here"},
]


def verified(public_key: VerifyKey, signature: str, timestamp: str, body: bytes,
             now: float | None = None) -> bool:
    try:
        public_key.verify(timestamp.encode() + body, bytes.fromhex(signature))
    except (BadSignatureError, ValueError):
        return False
    try:
        age = (time.time() if now is None else now) - float(timestamp)
    except ValueError:
        return False
    return abs(age) <= MAX_AGE


def option(data: dict[str, Any], name: str) -> str:
    for item in data.get("data", {}).get("options") or []:
        if item.get("name") == name:
            return str(item.get("value", ""))
    return ""


def requester_of(data: dict[str, Any], trusted_guilds: frozenset[str]) -> Requester:
    user = (data.get("member") or {}).get("user") or data.get("user") or {}
    guild = data.get("guild_id")
    channel = data.get("channel_id") or (data.get("channel") or {}).get("id")
    return Requester(platform="discord", user=str(user.get("id", "")),
                     channel=str(channel) if channel else None, is_direct=guild is None,
                     user_name=user.get("global_name") or user.get("username"),
                     is_guest=False if guild and str(guild) in trusted_guilds else None,
                     workspace=str(guild) if guild else None)


def attachment_of(data: dict[str, Any], api_url: str) -> Attachment | None:
    """The file of ``/run file:…``, from the interaction's resolved attachments; fetched only
    from Discord's file hosts (or the configured API's, for a stand-in)."""
    wanted = option(data, "file")
    if not wanted:
        return None
    resolved = (data.get("data", {}).get("resolved") or {}).get("attachments") or {}
    item = resolved.get(wanted) or {}
    return download("Discord", str(item.get("filename") or ""), item.get("size"),
                    str(item.get("url") or ""), ATTACHMENT_HOSTS | {urlparse(api_url).netloc})


def mail_user_text(channel: str) -> str:
    return ("To get Slurm's notifications about your jobs in this channel, submit them with "
            f"`--mail-user=discord:{channel}` (and `--mail-type=END,FAIL`, or `ALL`, to choose "
            "which).")


def command_text(data: dict[str, Any]) -> str:
    name = data.get("data", {}).get("name")
    if name == "run" and option(data, "file"):
        text = option(data, "command").strip()
        return text if text.lower().startswith("run") else f"run {text}".strip()
    if name == "run":
        return option(data, "command")
    if name == "help":
        return f"help {option(data, 'namespace')}".strip()
    return "status"


def blueprint(platform: Any, handler: CommandHandler) -> Blueprint:
    """The endpoint; ``platform`` answers deferred commands (``answer_interaction``)."""
    bp = Blueprint("discord", __name__)
    engine = handler.queue.engine

    @bp.post("/discord/interactions")
    def discord_interactions() -> Any:
        body = request.get_data(cache=False)
        if not verified(platform.public_key, request.headers.get("X-Signature-Ed25519", ""),
                        request.headers.get("X-Signature-Timestamp", ""), body):
            return Response("invalid request signature", status=401)
        try:
            data = load(body, INTERACTION, "the interaction")
        except BadPayload as exc:
            return jsonify(error=str(exc)), 400
        if data.get("type") == PING:
            return jsonify(type=PONG)
        if data.get("type") != APPLICATION_COMMAND:
            return jsonify(error=f"interactions of type {data['type']} are not handled here"), 400
        who = requester_of(data, platform.trusted_guilds)
        if who.user:
            identities.record(engine, "discord", who.user, who.user_name)
        name = data.get("data", {}).get("name")
        if name == "mailuser":
            if not who.channel:
                return jsonify(error="/mailuser needs the channel it was sent from"), 400
            identities.opt_in(engine, "discord", who.channel, who.user)
            return jsonify(type=CHANNEL_MESSAGE, data={
                "content": mail_user_text(who.channel), "flags": EPHEMERAL,
                "allowed_mentions": {"parse": []}})
        if name not in ("run", "help", "status"):
            return jsonify(type=CHANNEL_MESSAGE, data={
                "content": f"I don't know the command /{name}.", "flags": EPHEMERAL})
        token = str(data.get("token", ""))
        text = clean_command(command_text(data))
        attachment = attachment_of(data, platform.api_url)
        response = jsonify(type=DEFERRED)

        def answer() -> None:
            try:
                result = handler.handle(Incoming(who, text, attachment))
                pieces = response_pieces(result) or [Piece("text", "Done.")]
                platform.answer_interaction(token, pieces)
            except Exception:  # the user sees "thinking…" time out; we log why
                log.exception("discord: answering /%s failed", name)

        # Only after the deferral has gone out can the original response be edited.
        response.call_on_close(lambda: threading.Thread(target=answer, daemon=True,
                                                        name="discord-answer").start())
        return response

    return bp
