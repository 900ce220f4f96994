"""The shapes of Slack's Events API bodies, as far as Bolt and ``inbound.py`` read them (checked
by ``chatops.payloads`` after the signature, before Bolt parses the body)."""

from __future__ import annotations

from chatops.payloads import OPTIONAL_TEXT, TEXT

# The events the bot handles (app_mention, message): what parse_event reads. Other event types
# pass as long as they are objects with a type; Bolt acknowledges them.
EVENT = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": TEXT},
    "if": {"properties": {"type": {"enum": ["app_mention", "message"]}}},
    "then": {"properties": {
        "subtype": OPTIONAL_TEXT, "user": TEXT, "bot_id": OPTIONAL_TEXT, "channel": TEXT,
        "channel_type": TEXT, "ts": TEXT, "thread_ts": TEXT, "event_ts": TEXT,
        "text": OPTIONAL_TEXT, "team": TEXT, "edited": {"type": "object"},
        "bot_profile": {"type": ["object", "null"]}}},
}

ENVELOPE = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": TEXT, "challenge": TEXT, "token": TEXT, "team_id": OPTIONAL_TEXT,
        "enterprise_id": OPTIONAL_TEXT, "api_app_id": TEXT, "event_id": TEXT,
        "event_time": {"type": "integer"}, "is_enterprise_install": {"type": "boolean"},
        "authorizations": {"type": "array", "items": {"type": "object", "properties": {
            "team_id": OPTIONAL_TEXT, "enterprise_id": OPTIONAL_TEXT, "user_id": TEXT,
            "is_bot": {"type": "boolean"}}}},
        "event": EVENT,
    },
    "allOf": [
        {"if": {"properties": {"type": {"const": "url_verification"}}},
         "then": {"required": ["challenge"]}},
        {"if": {"properties": {"type": {"const": "event_callback"}}},
         "then": {"required": ["event"]}},
    ],
}

# An interactive payload (form field ``payload``): the bot has no handlers for these, but Bolt
# reads its type, team, user and channel before answering that.
INTERACTIVE = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": TEXT,
        "team": {"type": ["object", "null"], "properties": {"id": TEXT}},
        "user": {"type": ["object", "null"], "properties": {"id": TEXT, "team_id": TEXT}},
        "channel": {"type": ["object", "null"], "properties": {"id": TEXT}},
        "enterprise": {"type": ["object", "null"], "properties": {"id": TEXT}},
    },
}
