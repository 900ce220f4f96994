"""The shape of a Discord interaction, as far as ``interactions.py`` reads it (checked by
``chatops.payloads`` after the signature, before any field is used)."""

from __future__ import annotations

from chatops.payloads import ID, OPTIONAL_TEXT, TEXT

USER = {"type": "object", "properties": {
    "id": ID, "username": OPTIONAL_TEXT, "global_name": OPTIONAL_TEXT}}

INTERACTION = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "integer"},
        "token": TEXT,
        "guild_id": {"anyOf": [ID, {"type": "null"}]},
        "channel_id": {"anyOf": [ID, {"type": "null"}]},
        "channel": {"type": ["object", "null"], "properties": {"id": ID}},
        "member": {"type": ["object", "null"], "properties": {"user": USER}},
        "user": {"anyOf": [USER, {"type": "null"}]},
        "data": {"type": "object", "properties": {
            "name": TEXT,
            "options": {"type": ["array", "null"], "items": {
                "type": "object", "required": ["name"], "properties": {
                    "name": TEXT,
                    "value": {"anyOf": [TEXT, {"type": ["integer", "number", "boolean"]}]}}}},
            "resolved": {"type": ["object", "null"], "properties": {
                "attachments": {"type": "object", "additionalProperties": {
                    "type": "object", "properties": {
                        "filename": TEXT, "url": TEXT, "size": {"type": "integer"}}}}}},
        }},
    },
    # A command (type 2) names itself and carries the token its answer is sent with.
    "if": {"properties": {"type": {"const": 2}}},
    "then": {"required": ["data", "token"], "properties": {"data": {"required": ["name"]}}},
}
