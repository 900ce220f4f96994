"""Telegram's side of rendering: pieces -> sendMessage (HTML) / sendDocument calls.

Limits (Bot API): a message holds 4 096 characters after its HTML is parsed, a caption 1 024,
an uploaded document 50 MB (``CHATOPS_TELEGRAM_UPLOAD_LIMIT`` where a local Bot API server
takes more; a larger file becomes a download link or a note: ``bot.render.too_large``). Text
is cut on line boundaries and never inside a tag; code goes in ``<pre>`` (escaped); anything
that would take more than ``MAX_MESSAGES`` messages is attached as a text file instead.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable

from telegram import Bot, InputFile, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode

from bot.render import (
    MAX_MESSAGES,
    Piece,
    SendCount,
    as_file,
    merged,
    pack,
    segments,
    split_text,
    too_large,
)

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
FILE_LIMIT = 50 * 1024 * 1024

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
INLINE_CODE = re.compile(r"`([^`\n]+)`")


def inline_html(text: str) -> str:
    """Escape prose for HTML and turn `code` spans into <code>."""
    return INLINE_CODE.sub(r"<code>\1</code>", html.escape(text, quote=False))


def pre_html(code: str) -> str:
    return f"<pre>{html.escape(code, quote=False)}</pre>"


def text_messages(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Markdown-ish text as HTML messages, each at most ``limit`` visible characters."""
    parts: list[tuple[str, int]] = []
    for is_code, run in segments(text):
        for chunk in split_text(run, limit):
            if not chunk.strip():
                continue
            # A `code` span cut in two would show its backticks: harmless, and rare.
            parts.append((pre_html(chunk) if is_code else inline_html(chunk), len(chunk)))
    return pack(parts, limit)


def visible_length(markup: str) -> int:
    """How long HTML we made looks to Telegram (tags removed, entities decoded)."""
    return len(html.unescape(re.sub(r"<[^>]+>", "", markup)))


class Sender(SendCount):
    """Sends pieces to one chat; the first message answers ``reply_to`` when given."""

    def __init__(self, bot: Bot, chat_id: int | str, *, thread: int | None = None,
                 reply_to: int | None = None, file_name: str = "output.txt", skip: int = 0,
                 on_sent: Callable[[int], None] | None = None, file_limit: int = FILE_LIMIT):
        self.bot = bot
        self.file_limit = file_limit
        self.chat_id = chat_id
        self.thread = thread
        self.reply_to = reply_to
        self.file_name = file_name
        super().__init__(skip, on_sent)

    def _where(self) -> dict:
        where: dict = {"message_thread_id": self.thread}
        if self.reply_to is not None and self.sent == 0:
            where["reply_parameters"] = ReplyParameters(self.reply_to,
                                                        allow_sending_without_reply=True)
        return where

    async def message(self, markup: str) -> None:
        if self.skipped():
            return
        await self.bot.send_message(self.chat_id, markup, parse_mode=ParseMode.HTML,
                                    link_preview_options=NO_PREVIEW, **self._where())
        self.made()

    async def pieces(self, pieces: list[Piece]) -> None:
        for piece in merged(pieces, MESSAGE_LIMIT):
            await self.piece(piece)

    async def piece(self, piece: Piece) -> None:
        if piece.kind == "file":
            return await self.document(piece)
        if not piece.text.strip():
            return None
        if piece.kind == "code":
            if len(piece.text) <= MESSAGE_LIMIT:
                return await self.message(pre_html(piece.text))
            return await self.document(as_file(
                piece, self.file_name,
                f"The output is {len(piece.text):,} characters long, so it is attached."))
        messages = text_messages(piece.text)
        if len(messages) > MAX_MESSAGES:
            return await self.document(as_file(
                piece, self.file_name,
                f"The message is {len(piece.text):,} characters long, so it is attached."))
        for markup in messages:
            await self.message(markup)
        return None

    async def document(self, piece: Piece) -> None:
        caption = inline_html(piece.text) if piece.text else None
        if caption and visible_length(caption) > CAPTION_LIMIT:
            await self.pieces([Piece("text", piece.text)])
            caption = None
        name = piece.file_name or self.file_name
        if self.skipped():
            return None
        if piece.file_data is not None:
            content: object = piece.file_data
        else:
            assert piece.file_path is not None
            size = os.path.getsize(piece.file_path)  # OSError: the caller reports it
            if size > self.file_limit:
                note = too_large(piece, name, size, self.file_limit, "Telegram")
                return await self.message(inline_html(
                    f"{piece.text}\n{note}" if piece.text else note))
            content = open(piece.file_path, "rb")
        try:
            await self.bot.send_document(self.chat_id, InputFile(content, filename=name),
                                         caption=caption, parse_mode=ParseMode.HTML,
                                         **self._where())
        finally:
            if hasattr(content, "close"):
                content.close()
        self.made()
        return None
