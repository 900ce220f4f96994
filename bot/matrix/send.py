"""Matrix's side of rendering: pieces -> m.notice events (HTML) and m.file uploads.

An event may hold 64 KiB of JSON, so a message carries at most ``MESSAGE_LIMIT`` characters;
text is cut on line boundaries, code goes in ``<pre><code>`` (escaped), and anything longer
than ``MAX_MESSAGES`` messages (or code longer than one) is uploaded as a text file instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from nio import AsyncClient

from bot.matrix.client import code_html, inline_html, notice_content, send_content, upload
from bot.render import (
    MAX_MESSAGES,
    Piece,
    SendCount,
    as_file,
    segments,
    split_text,
    too_large,
)

MESSAGE_LIMIT = 16000
FILE_LIMIT = 50 * 1024 * 1024  # Synapse's default max_upload_size


def text_contents(text: str, limit: int = MESSAGE_LIMIT) -> list[dict[str, Any]]:
    """Markdown-ish text (``` fences, `code` spans) as notice contents of at most ``limit``."""
    contents = []
    for is_code, run in segments(text):
        for chunk in split_text(run, limit):
            if chunk.strip():
                contents.append(notice_content(chunk, code_html(chunk) if is_code
                                               else inline_html(chunk)))
    return contents


def file_content(name: str, uri: str, size: int) -> dict[str, Any]:
    return {"msgtype": "m.file", "body": name, "filename": name, "url": uri,
            "info": {"size": size, "mimetype": "text/plain"}}


class Sender(SendCount):
    """Sends pieces to one room; the first event answers ``reply_to`` when given."""

    def __init__(self, client: AsyncClient, room_id: str, *, reply_to: str | None = None,
                 file_name: str = "output.txt", skip: int = 0,
                 on_sent: Callable[[int], None] | None = None, txn: str | None = None,
                 file_limit: int = FILE_LIMIT):
        self.client = client
        self.file_limit = file_limit
        self.room_id = room_id
        self.txn = txn  # a delivery's stable prefix of transaction ids (idempotent resends)
        self.reply_to = reply_to
        self.file_name = file_name
        super().__init__(skip, on_sent)

    async def event(self, content: dict[str, Any]) -> None:
        if self.skipped():
            return
        if self.reply_to and self.sent == 0:
            content = {**content, "m.relates_to": {"m.in_reply_to": {"event_id": self.reply_to}}}
        txn_id = f"{self.txn}-{self.sent}" if self.txn else None
        await send_content(self.client, self.room_id, content, txn_id)
        self.made()

    async def pieces(self, pieces: list[Piece]) -> None:
        for piece in pieces:
            await self.piece(piece)

    async def piece(self, piece: Piece) -> None:
        if piece.kind == "file":
            return await self.file(piece)
        if not piece.text.strip():
            return None
        if piece.kind == "code":
            if len(piece.text) <= MESSAGE_LIMIT:
                return await self.event(notice_content(piece.text, code_html(piece.text)))
            return await self.file(as_file(
                piece, self.file_name,
                f"The output is {len(piece.text):,} characters long, so it is attached."))
        contents = text_contents(piece.text)
        if len(contents) > MAX_MESSAGES:
            return await self.file(as_file(
                piece, self.file_name,
                f"The message is {len(piece.text):,} characters long, so it is attached."))
        for content in contents:
            await self.event(content)
        return None

    async def file(self, piece: Piece) -> None:
        name = piece.file_name or self.file_name
        if piece.text.strip():
            for content in text_contents(piece.text):
                await self.event(content)
        if piece.file_data is not None:
            data = piece.file_data
        else:
            assert piece.file_path is not None
            with open(piece.file_path, "rb") as handle:  # OSError: the caller reports it
                data = handle.read(self.file_limit + 1)
            if len(data) > self.file_limit:
                length = os.path.getsize(piece.file_path)
                note = too_large(piece, name, length, self.file_limit, "this homeserver")
                return await self.event(notice_content(note.replace("`", ""),
                                                       inline_html(note)))
        if self.skipped():  # its m.file arrived in an earlier attempt: no re-upload
            return None
        uri = await upload(self.client, data, name)
        await self.event(file_content(name, uri, len(data)))
        return None
