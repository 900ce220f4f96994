"""The shape of a MailProg event (see ``chatops/mailprog.py``), checked by ``chatops.payloads``
where events arrive over HTTP (``POST /slurm/events``), after the bearer token."""

from __future__ import annotations

from chatops.payloads import OPTIONAL_TEXT, TEXT

# It becomes the spool file's name: nothing but the MailProg's own form (no path traversal).
EVENT_ID = r"^[0-9]{1,20}-[0-9]{1,10}-[0-9a-f]{1,32}$"

EVENT = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "version": {"type": "integer"},
        "id": {"type": "string", "pattern": EVENT_ID},
        "argv": {"type": "array", "items": TEXT},
        "subject": OPTIONAL_TEXT,
        "mail_user": OPTIONAL_TEXT,
        "env": {"type": "object", "additionalProperties": TEXT},
        "received_at": TEXT,
        "host": TEXT,
    },
    "anyOf": [{"required": ["argv"]}, {"required": ["env"]}, {"required": ["subject"]}],
}
