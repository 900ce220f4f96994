"""Telegram messages -> commands: what the bot answers, and what it leaves alone.

In a private chat every text is a command (``example say hello Bob`` or ``/run ...``). In a
group the bot only answers ``/run``, ``/help``, ``/status`` (and the other built-ins as slash
commands), ``/start``/``/stop``, messages that mention it, and replies to its own messages;
everything else in a group is other people's conversation and gets no answer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from telegram import Message, MessageEntity, ReactionTypeEmoji, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.render import Piece, clean_command, response_pieces
from bot.telegram.send import Sender
from chatops import identities
from chatops.calc.submit import Attachment, AttachmentError, register
from chatops.commands import CommandHandler, Incoming
from chatops.events import Requester

log = logging.getLogger("chatops.telegram")

SLASH_BUILTINS = ("help", "status", "cancel", "logs", "quota", "calcs", "calc", "approve",
                  "block", "unblock", "limit", "users", "user", "profile", "bind", "link",
                  "unlink")
# HPC_bot's command names, so its users change nothing: /name -> our command word.
ALIASES = {"list": "users", "search": "users", "alter_limit": "limit", "upd": "profile"}
ACCEPTED = "👀"  # the reaction that says "your command is queued"
QUIET_SUCCESS = "👍"  # a job with report_success False succeeded


@dataclass(frozen=True)
class Intent:
    kind: str  # "command" | "start" | "stop"
    text: str = ""


def intent_of(message: Message, bot_username: str, bot_id: int) -> Intent | None:
    """What ``message`` asks of the bot, or None when it is not addressed to it."""
    text = (message.text or "").strip()
    if not text:
        return None
    private = message.chat.type == "private"
    if text.startswith("/"):
        first, _, rest = text.partition(" ")
        if "\n" in first:
            first, _, more = first.partition("\n")
            rest = f"{more} {rest}".strip()
        name, _, addressee = first[1:].partition("@")
        if addressee and addressee.lower() != bot_username.lower():
            return None  # a command for another bot in the group
        name = name.lower()
        if name in ("start", "stop"):
            return Intent(name)
        if name == "run":
            return Intent("command", rest.strip())
        if name == "status" and rest.strip().lstrip("#").isdigit():  # HPC_bot's /status <id>
            return Intent("command", f"calc {rest.strip()}")
        if name in ALIASES:
            return Intent("command", f"{ALIASES[name]} {rest}".strip())
        if name in SLASH_BUILTINS:
            return Intent("command", f"{name} {rest}".strip())
        if private or addressee:
            return Intent("command", f"{name} {rest}".strip())
        return None
    if private:
        return Intent("command", text)
    stripped = _without_mention(message, bot_username, bot_id)
    if stripped is not None:
        return Intent("command", stripped)
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return Intent("command", text)
    return None


def caption_command(message: Message, bot_username: str) -> str | None:
    """What a document's caption asks (``run [runner] [on cluster] [args…]``), or None when a
    document in a group is not for the bot (only ``/run`` or a mention is)."""
    caption = (message.caption or "").strip()
    mention = f"@{bot_username}".lower()
    if caption.startswith("/"):
        first, _, rest = caption.partition(" ")
        name, _, addressee = first[1:].partition("@")
        if addressee and addressee.lower() != bot_username.lower():
            return None
        return f"{name} {rest}".strip()
    if message.chat.type == "private":
        return caption or "run"
    if mention in caption.lower():
        at = caption.lower().index(mention)
        return (caption[:at] + caption[at + len(mention):]).strip(" ,:") or "run"
    return None


def _without_mention(message: Message, bot_username: str, bot_id: int) -> str | None:
    """The text with the bot's @mention removed, or None when the bot is not mentioned."""
    entities = message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION])
    text = message.text or ""
    for entity, value in entities.items():
        mine = (entity.type == MessageEntity.MENTION
                and value.lower() == f"@{bot_username.lower()}") or (
            entity.type == MessageEntity.TEXT_MENTION and entity.user is not None
            and entity.user.id == bot_id)
        if mine:
            return text.replace(value, " ", 1).strip(" ,:")
    return None


def requester_of(message: Message, trusted_chats: frozenset[str]) -> Requester:
    chat = message.chat
    user = message.from_user
    if user is not None:
        user_id, name = str(user.id), user.username or user.full_name
    else:  # an anonymous group admin or a channel: the chat it speaks as
        sender = message.sender_chat or chat
        user_id, name = str(sender.id), sender.title or sender.username or str(sender.id)
    trusted = str(chat.id) in trusted_chats
    return Requester(platform="telegram", user=user_id, channel=str(chat.id),
                     thread=str(message.message_thread_id) if message.is_topic_message else None,
                     message=str(message.message_id), is_direct=chat.type == "private",
                     user_name=name, is_guest=False if trusted else None)


def mail_user_text(chat_id: int) -> str:
    return ("To get Slurm's notifications about your jobs in this chat, submit them with:\n"
            f"```\n--mail-user=telegram:{chat_id}\n```\n"
            "(and `--mail-type=END,FAIL`, or `ALL`, to choose which). "
            "Send /stop to turn them off. /help lists what else I can do.")


class Inbound:
    """The PTB handler: one per Application."""

    def __init__(self, handler: CommandHandler, trusted_chats: frozenset[str]):
        self.handler = handler
        self.engine = handler.queue.engine
        self.trusted_chats = trusted_chats

    def _ended_quietly(self, job_id: int | None) -> bool:
        job = self.handler.queue.get(job_id) if job_id is not None else None
        spec = self.handler.config.job(job.job_type) if job is not None else None
        return bool(job and spec and job.state == "succeeded" and not spec.report_success)

    async def on_document(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A file sent to the bot: a calculation's input (chatops/calc/submit.py)."""
        message = update.message
        if message is None or message.document is None:
            return
        bot = context.bot
        text = caption_command(message, bot.username)
        if text is None:
            return
        who = requester_of(message, self.trusted_chats)
        await asyncio.to_thread(identities.record, self.engine, "telegram", who.user,
                                who.user_name)
        document = message.document
        loop = asyncio.get_running_loop()

        async def download() -> bytes:
            file = await bot.get_file(document.file_id)
            return bytes(await file.download_as_bytearray())

        def fetch() -> bytes:  # called from the handler's thread, once the checks passed
            try:
                return asyncio.run_coroutine_threadsafe(download(), loop).result(timeout=300)
            except TelegramError as exc:
                raise AttachmentError(f"Telegram would not give me the file "
                                      f"({exc.message})") from exc

        attachment = Attachment(document.file_name or "", document.file_size, fetch)
        response = await asyncio.to_thread(
            self.handler.handle, Incoming(who, clean_command(text), attachment))
        thread = message.message_thread_id if message.is_topic_message else None
        reply_to = None if who.is_direct else message.message_id
        await Sender(bot, message.chat.id, thread=thread, reply_to=reply_to).pieces(
            response_pieces(response))

    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None:
            return
        bot = context.bot
        intent = intent_of(message, bot.username, bot.id)
        if intent is None:
            return
        who = requester_of(message, self.trusted_chats)
        await asyncio.to_thread(identities.record, self.engine, "telegram", who.user,
                                who.user_name)
        if intent.kind == "start":
            await asyncio.to_thread(identities.opt_in, self.engine, "telegram", who.channel,
                                    who.user)
            pieces = [Piece("text", mail_user_text(message.chat.id))]
            if self.handler.config.runners:  # HPC_bot's /start: a new user, and their quota
                refused = await asyncio.to_thread(register, self.handler.queue,
                                                  self.handler.config, who)
                if refused:  # not from here (calculations' register_from)
                    pieces.append(Piece("text", refused))
                else:
                    response = await asyncio.to_thread(self.handler.handle,
                                                       Incoming(who, "quota"))
                    pieces += response_pieces(response)
        elif intent.kind == "stop":
            was = await asyncio.to_thread(identities.opt_out, self.engine, "telegram",
                                          who.channel)
            pieces = [Piece("text", "This chat will no longer get Slurm notifications; "
                                    "/start turns them on again." if was else
                                    "This chat was not getting Slurm notifications; "
                                    "/start turns them on.")]
        else:
            response = await asyncio.to_thread(self.handler.handle,
                                               Incoming(who, clean_command(intent.text)))
            pieces = response_pieces(response, announce_job=False)
            if not pieces and response.acknowledged:
                # Accepted: react as Slack users know it; a reply could land after the report.
                try:
                    await bot.set_message_reaction(message.chat.id, message.message_id,
                                                   [ReactionTypeEmoji(ACCEPTED)])
                    if await asyncio.to_thread(self._ended_quietly, response.job_id):
                        # The job's 👍 may have beaten our 👀 (a bot has one reaction): redo it.
                        await bot.set_message_reaction(message.chat.id, message.message_id,
                                                       [ReactionTypeEmoji(QUIET_SUCCESS)])
                except TelegramError:  # reactions are off in this chat: say it instead
                    pieces = response_pieces(response)
        thread = message.message_thread_id if message.is_topic_message else None
        reply_to = None if who.is_direct else message.message_id
        await Sender(bot, message.chat.id, thread=thread, reply_to=reply_to).pieces(pieces)
