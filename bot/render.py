"""Platform-neutral rendering helpers: what a report or a response is made of, and how to cut
text to a platform's message limit without breaking lines or code fences.

A platform turns a ``Report``/notice/``Response`` into ``Piece``s (text, code, file) with
``delivery_pieces``/``response_pieces``, then sends each piece its own way, using
``split_text``/``segments`` to respect its limit (Telegram 4 096 characters, Discord 2 000).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chatops.report import Report, blocks_as_text
from chatops.texts import clock, size

MAX_MESSAGES = 5  # a text longer than this many messages is sent as a file instead


@dataclass(frozen=True)
class Piece:
    kind: str  # "text" (markdown-ish, `code` spans and ``` fences) | "code" | "file"
    text: str = ""  # the text, the code, or a file's caption
    file_path: str | None = None
    file_name: str | None = None
    file_data: bytes | None = None  # a file made here (long text), instead of file_path
    # Where a file too large for the platform is found instead: a download link working until
    # ``link_until`` (a calculation's result: chatops/calc/links.py), or else the place it
    # stays in
    link: str | None = None
    link_until: float | None = None
    stays_in: str = "the job's log folder"


class SendCount:
    """The calls one delivery has made (messages, uploads): the first ``skip`` of them were made
    by earlier attempts — recorded with the delivery through ``on_sent`` — and are not repeated."""

    def __init__(self, skip: int = 0, on_sent: Callable[[int], None] | None = None):
        self.skip = skip
        self.sent = 0
        self.on_sent = on_sent

    def skipped(self) -> bool:
        """True (and counted) when this call was made by an earlier attempt."""
        if self.sent < self.skip:
            self.sent += 1
            return True
        return False

    def made(self) -> None:
        self.sent += 1
        if self.on_sent is not None:
            self.on_sent(self.sent)


def clean_command(text: str) -> str:
    """What users typed, as the grammar wants it: no trailing dots, single-line spacing."""
    return text.strip().rstrip(".").strip()


def response_pieces(response: Any, announce_job: bool = True) -> list[Piece]:
    """The replies of a ``chatops.commands.Response``; with ``announce_job``, a line for a job
    accepted without a word (platforms that can react to the request do that instead)."""
    pieces = [Piece("code" if r.code else "text", r.text) for r in response.replies]
    if announce_job and not pieces and response.job_id is not None:
        pieces.append(Piece("text", f"Job {response.job_id} is queued; its report will follow "
                                    "here."))
    return pieces


def delivery_pieces(payload: dict[str, Any]) -> list[Piece]:
    """What a queued delivery (a job's report or a notice) shows; [] for a silent success."""
    if payload.get("kind") != "report":
        return [Piece("text", payload.get("text", ""))]
    report = Report.from_payload(payload)
    if report.silent:
        return []
    pieces = [Piece("text", report.note)] if report.note else []
    if report.format == "blocks" and report.blocks:
        pieces.append(Piece("text", blocks_as_text(report.blocks)))
    elif report.format == "code":
        pieces.append(Piece("code", report.text.rstrip("\n")))
    elif report.format == "file" and report.file_path:
        pieces.append(Piece("file", report.text, file_path=report.file_path,
                            file_name=report.file_name or "report.txt"))
    else:
        pieces.append(Piece("text", report.text or f"`{report.job_type}` (job {report.job_id}) "
                                                   f"{report.outcome.replace('_', ' ')}."))
    return pieces + [result_piece(f) for f in report.files]


def result_piece(item: Mapping[str, Any]) -> Piece:
    """One of a calculation's result files (``Report.files``), with its download link."""
    return Piece("file", file_path=item["path"], file_name=item["name"], link=item.get("url"),
                 link_until=item.get("until"),
                 stays_in="the site's result storage (ask the site's admins for it)")


def upload_limit(environ: Mapping[str, str], platform: str, usual: int) -> int:
    """The bytes one upload may have on a platform: ``CHATOPS_<PLATFORM>_UPLOAD_LIMIT`` where
    the site's differs from the platform's ``usual`` (checked at start: chatops/settings.py)."""
    value = (environ.get(f"CHATOPS_{platform.upper()}_UPLOAD_LIMIT") or "").strip()
    return int(value) if value else usual


def too_large(piece: Piece, name: str, size: int, limit: int, platform: str) -> str:
    """What a message says in place of a file larger than the platform accepts."""
    head = (f"The file `{name}` is {_bytes(size)}, more than {platform} accepts "
            f"({_bytes(limit)})")
    if piece.link:
        until = f" until {clock(piece.link_until, date=True)}" if piece.link_until else ""
        return f"{head}: download it{until} (no login needed) from {piece.link}"
    return f"{head}; it stays in {piece.stays_in}."


def _bytes(value: int) -> str:
    return f"{value} bytes" if value < 1024 else size(value)


def merged(pieces: list[Piece], code_limit: int) -> list[Piece]:
    """Adjacent text and short code pieces as one markdown-ish text piece (code fenced), so a
    caption and its code block go in one message when they fit."""
    result: list[Piece] = []
    for piece in pieces:
        if piece.kind == "code" and len(piece.text) <= code_limit and "```" not in piece.text:
            piece = Piece("text", f"```\n{piece.text}\n```")
        if piece.kind == "text" and result and result[-1].kind == "text":
            result[-1] = Piece("text", f"{result[-1].text}\n{piece.text}")
        else:
            result.append(piece)
    return result


def as_file(piece: Piece, name: str, caption: str) -> Piece:
    """A text or code piece too long for messages, as an attached text file."""
    return Piece("file", caption, file_name=name, file_data=piece.text.encode())


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into chunks of at most ``limit`` characters, on line boundaries where
    possible (a single longer line is cut hard). Joining the chunks with newlines gives the
    text back (line breaks at the cuts are the separators)."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        while len(line) > limit:  # a line longer than a message: cut it hard
            if current:
                chunks.append("\n".join(current))
                current, size = [], 0
            chunks.append(line[:limit])
            line = line[limit:]
        added = len(line) + (1 if current else 0)
        if current and size + added > limit:
            chunks.append("\n".join(current))
            current, size = [line], len(line)
        else:
            current.append(line)
            size += added
    if current or not chunks:
        chunks.append("\n".join(current))
    return chunks


FENCE = re.compile(r"```[^\n`]*\n?(.*?)\n?```", re.S)


def segments(text: str) -> list[tuple[bool, str]]:
    """Split markdown-ish text into (is_code, text) runs at ``` fences."""
    runs: list[tuple[bool, str]] = []
    position = 0
    for match in FENCE.finditer(text):
        before = text[position:match.start()].strip("\n")
        if before:
            runs.append((False, before))
        runs.append((True, match.group(1)))
        position = match.end()
    rest = text[position:].strip("\n")
    if rest or not runs:
        runs.append((False, rest))
    return runs


def pack(parts: list[tuple[str, int]], limit: int, separator: str = "\n") -> list[str]:
    """Join consecutive (rendered part, size that counts) pairs into as few messages of at most
    ``limit`` as fit. The size is what the platform counts (Telegram counts the text after
    parsing its HTML, so a part's size is the length of its visible text)."""
    messages: list[str] = []
    size = 0
    for part, part_size in parts:
        if messages and size + len(separator) + part_size <= limit:
            messages[-1] += separator + part
            size += len(separator) + part_size
        else:
            messages.append(part)
            size = part_size
    return messages
