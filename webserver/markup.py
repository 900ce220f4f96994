"""Chat markup as HTML, the way Slack shows it, so that the dashboard and its console read like
the chat: `code`, ```fenced blocks```, *bold*, _italic_, ~strike~, <https://link|label>, > quotes,
and Block Kit blocks laid out as blocks instead of their JSON.

Everything is escaped first; the only tags in the result are the ones made here, so the HTML is
safe to insert into a page. Only http(s) links become links.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from chatops.plain_text import render_delivery
from chatops.platform import Delivery
from chatops.redact import redact
from chatops.report import blocks_as_text

FILE_PREVIEW_CHARS = 20_000
FENCE = re.compile(r"```(?:[A-Za-z0-9_+-]*\n)?(.*?)\n?```\n?", re.S)
CODE = re.compile(r"`([^`\n]+)`")
# Applied to escaped text, outside code: a marker hugs its words and is not inside a word.
STYLES = (
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])"), "strong"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])"), "em"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])"), "del"),
)
LINK = re.compile(r"&lt;(https?://[^\s|&]+(?:&amp;[^\s|&]+)*)(?:\|([^\n]*?))?&gt;")
QUOTE = re.compile(r"^&gt; ?(.*)$", re.M)


def text_html(text: str) -> Markup:
    """A message in chat markup, as HTML (keep ``white-space: pre-wrap`` for its lines)."""
    return Markup(_around(FENCE, text, _inline,
                          lambda fence: f"<pre><code>{escape(fence.group(1))}</code></pre>"))


def _around(pattern: re.Pattern, text: str, between: Callable[[str], str],
            matched: Callable[[re.Match], str]) -> str:
    """``text`` with each match of ``pattern`` rendered by ``matched``, the rest by ``between``."""
    out = []
    position = 0
    for match in pattern.finditer(text):
        out.append(between(text[position:match.start()]))
        out.append(matched(match))
        position = match.end()
    out.append(between(text[position:]))
    return "".join(out)


def _inline(text: str) -> str:
    return _around(CODE, text, _styled, lambda code: f"<code>{escape(code.group(1))}</code>")


def _styled(text: str) -> str:
    # links first: no emphasis inside an address
    html = _around(LINK, str(escape(text)), _emphasis, _link)
    return QUOTE.sub(r"<blockquote>\1</blockquote>", html)


def _link(link: re.Match) -> str:
    label = _emphasis(link.group(2)) if link.group(2) else link.group(1)
    return f'<a href="{link.group(1)}" rel="noreferrer">{label}</a>'


def _emphasis(html: str) -> str:
    for pattern, tag in STYLES:
        html = pattern.sub(rf"<{tag}>\1</{tag}>", html)
    return html


def code_html(text: str) -> Markup:
    return Markup(f"<pre><code>{escape(text.rstrip())}</code></pre>")


# -- Block Kit ----------------------------------------------------------------------------------

def blocks_html(blocks: Iterable[dict[str, Any]]) -> Markup:
    """Block Kit blocks laid out roughly as Slack does: headers, sections with fields,
    dividers, context lines; images as links (the dashboard loads nothing from elsewhere)."""
    out = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            out.append(f"<h3 class=\"bk-header\">{_text_object(block.get('text'))}</h3>")
        elif kind == "section":
            body = _text_object(block.get("text"))
            fields = "".join(f"<div>{_text_object(f)}</div>" for f in block.get("fields") or [])
            accessory = block.get("accessory")
            extra = _element(accessory) if isinstance(accessory, dict) else ""
            out.append(f"<div class=\"bk-section\">{body}"
                       + (f"<div class=\"bk-fields\">{fields}</div>" if fields else "")
                       + extra + "</div>")
        elif kind == "divider":
            out.append("<hr class=\"bk-divider\">")
        elif kind == "context":
            items = " ".join(_element(e) for e in block.get("elements") or [])
            out.append(f"<div class=\"bk-context\">{items}</div>")
        elif kind == "image":
            out.append(f"<div class=\"bk-image\">{_element(block)}</div>")
        else:  # rich text, actions, inputs...: their words
            words = blocks_as_text([block])
            if words:
                out.append(f"<div class=\"bk-section\">{text_html(words)}</div>")
    return Markup("".join(out))


def _text_object(obj: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text") or "")
    return str(text_html(text)) if obj.get("type") == "mrkdwn" else str(escape(text))


def _element(element: dict[str, Any]) -> str:
    kind = element.get("type")
    if kind == "image":
        label = escape(element.get("alt_text") or "image")
        url = str(element.get("image_url") or "")
        if url.startswith(("https://", "http://")):
            return f'<a class="bk-img" href="{escape(url)}" rel="noreferrer">[{label}]</a>'
        return f"<span class=\"bk-img\">[{label}]</span>"
    if kind in ("mrkdwn", "plain_text"):
        return f"<span>{_text_object(element)}</span>"
    if kind == "button":
        return f"<span class=\"bk-button\">{_text_object(element.get('text'))}</span>"
    return ""


# -- what the service says ----------------------------------------------------------------------

def delivery_html(delivery: Delivery) -> Markup:
    """A report or notice as the dashboard shows it."""
    report = delivery.report
    if report is None:
        return text_html(render_delivery(delivery))
    if report.silent:
        return Markup(f"<p class=\"muted\">(job {report.job_id} "
                      f"{escape(report.outcome.replace('_', ' '))}, quietly)</p>")
    parts = [text_html(report.note)] if report.note else []
    if report.format == "blocks" and report.blocks:
        parts.append(blocks_html(report.blocks))
    elif report.format == "code":
        parts.append(code_html(report.text))
    elif report.format == "file" and report.file_path:
        parts.append(text_html(report.text))
        parts.append(Markup(f"<p class=\"file\">{escape(report.file_name or 'file')}</p>"))
        try:
            preview = Path(report.file_path).read_text(errors="replace")[:FILE_PREVIEW_CHARS]
            parts.append(code_html(redact(preview)))
        except OSError as exc:
            parts.append(Markup(f"<p class=\"muted\">(the file cannot be read here: "
                                f"{escape(exc.strerror or str(exc))})</p>"))
    else:
        parts.append(text_html(report.text))
    for item in report.files:  # a calculation's results: downloads for whoever may see it
        href = f"/console/results/{report.job_id}/{quote(item['name'])}"
        parts.append(Markup(f"<p class=\"file\"><a href=\"{escape(href)}\" download>"
                            f"{escape(item['name'])}</a></p>"))
    return Markup("\n").join(parts)


def reply_html(text: str, code: bool) -> Markup:
    """One reply to a command."""
    return code_html(text) if code else text_html(text)
