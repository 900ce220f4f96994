"""Discord's side of rendering: pieces -> messages of at most 2 000 characters, or attachments.

Discord speaks markdown, so text goes as it is, cut on line boundaries (never inside a code
fence: a fenced run is cut into separately fenced chunks). Code fits one fenced message or is
attached as a file; text that would take more than ``MAX_MESSAGES`` messages is attached too.
"""

from __future__ import annotations

import io
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord

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

MESSAGE_LIMIT = 2000
FILE_LIMIT = 10 * 1024 * 1024  # what any server accepts without boosts


@dataclass(frozen=True)
class Out:
    content: str | None = None
    file_name: str | None = None
    file_data: bytes | None = None
    file_path: str | None = None

    def file(self) -> discord.File | None:
        if self.file_name is None:
            return None
        if self.file_data is not None:
            return discord.File(io.BytesIO(self.file_data), filename=self.file_name)
        assert self.file_path is not None
        return discord.File(self.file_path, filename=self.file_name)


def fenced(code: str) -> str:
    # A ``` inside the code would close the fence early: break it with a zero-width space.
    return "```\n" + code.replace("```", "`\u200b``") + "\n```"


def text_messages(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    parts: list[tuple[str, int]] = []
    for is_code, run in segments(text):
        for chunk in split_text(run, limit - len(fenced("")) if is_code else limit):
            if chunk.strip():
                part = fenced(chunk) if is_code else chunk
                parts.append((part, len(part)))
    return pack(parts, limit)


def outs(pieces: list[Piece], file_name: str, file_limit: int = FILE_LIMIT) -> list[Out]:
    """The messages and uploads that show ``pieces`` on Discord, in order."""
    result: list[Out] = []
    for piece in merged(pieces, MESSAGE_LIMIT - len(fenced(""))):
        if piece.kind == "file":
            result.extend(_file(piece, file_name, file_limit))
        elif not piece.text.strip():
            continue
        elif piece.kind == "code":
            if len(fenced(piece.text)) <= MESSAGE_LIMIT:
                result.append(Out(fenced(piece.text)))
            else:
                result.extend(_file(as_file(piece, file_name, (
                    f"The output is {len(piece.text):,} characters long, so it is attached.")),
                    file_name, file_limit))
        else:
            messages = text_messages(piece.text)
            if len(messages) > MAX_MESSAGES:
                result.extend(_file(as_file(piece, file_name, (
                    f"The message is {len(piece.text):,} characters long, so it is attached.")),
                    file_name, file_limit))
            else:
                result.extend(Out(m) for m in messages)
    return result


def _file(piece: Piece, default_name: str, limit: int) -> list[Out]:
    name = piece.file_name or default_name
    captions = text_messages(piece.text) if piece.text.strip() else []
    before, caption = (captions[:-1], captions[-1]) if captions else ([], None)
    result = [Out(c) for c in before]
    if piece.file_data is None:
        assert piece.file_path is not None
        size = os.path.getsize(piece.file_path)  # OSError: the caller reports it
        if size > limit:
            note = too_large(piece, name, size, limit, "Discord")
            return result + [Out(f"{caption}\n{note}" if caption else note)]
    return result + [Out(caption, name, piece.file_data, piece.file_path)]


class Sender(SendCount):
    """Sends outs one by one."""

    def __init__(self, send: Callable[[Out], Awaitable[object]], skip: int = 0,
                 on_sent: Callable[[int], None] | None = None):
        super().__init__(skip, on_sent)
        self.send = send

    async def all(self, items: list[Out]) -> None:
        for item in items:
            if not self.skipped():
                await self.send(item)
                self.made()
