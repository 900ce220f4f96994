"""The shape of a Telegram update, as far as the bot reads it (checked by ``chatops.payloads``
after the secret token, before python-telegram-bot turns it into an ``Update``)."""

from __future__ import annotations

from chatops.payloads import OPTIONAL_TEXT, TEXT

INT = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
USER = {"type": "object", "required": ["id", "is_bot", "first_name"], "properties": {
    "id": INT, "is_bot": {"type": "boolean"}, "first_name": TEXT, "last_name": OPTIONAL_TEXT,
    "username": OPTIONAL_TEXT}}
CHAT = {"type": "object", "required": ["id", "type"], "properties": {
    "id": INT, "type": TEXT, "title": OPTIONAL_TEXT, "username": OPTIONAL_TEXT}}
ENTITY = {"type": "object", "required": ["type", "offset", "length"], "properties": {
    "type": TEXT, "offset": INT, "length": INT, "user": USER}}


def _message(depth: int) -> dict:
    """A message; the one it replies to is a message too (one level is all the bot reads)."""
    properties = {
        "message_id": INT, "date": INT, "chat": CHAT, "from": USER, "sender_chat": CHAT,
        "text": TEXT, "message_thread_id": INT, "is_topic_message": {"type": "boolean"},
        "entities": {"type": "array", "items": ENTITY},
    }
    if depth:
        properties["reply_to_message"] = _message(depth - 1)
    return {"type": "object", "required": ["message_id", "date", "chat"],
            "properties": properties}


UPDATE = {
    "type": "object",
    "required": ["update_id"],
    "properties": {"update_id": INT, "message": _message(1), "edited_message": _message(1)},
}
