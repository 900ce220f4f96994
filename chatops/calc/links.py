"""Download links for a calculation's result files: signed, expiring, needing no login (chat
users have none), served by the web server (webserver/result_links.py).

A link is made for every result file kept here when the report is made (and again when ``calc
<id>`` re-sends it); a platform shows it instead of a file larger than it accepts. It is
``CHATOPS_WEB_PUBLIC_URL/results/<token>/<name>``, where the token is the calculation and file
name signed with the service's key (chatops/signing.py) and the time it was made; it works for
``CHATOPS_RESULTS_LINK_LIFETIME`` (default 7 days). The calculation's record keeps when its
newest link ends, and retention (chatops/prune.py) keeps the files until then.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired
from sqlalchemy import Engine

from chatops.calc import store
from chatops.params import parse_duration
from chatops.settings import Settings
from chatops.signing import serializer
from chatops.texts import clock

SALT = "chatops.result-file"
DEFAULT_LIFETIME = 7 * 86400.0
PATH = "/results"


class LinkRefused(Exception):
    """A link the web server will not serve; the message says why, to the person holding it."""

    status = 403


class LinkExpired(LinkRefused):
    status = 410


def lifetime(settings: Settings) -> float:
    """How long a link works, in seconds (checked at start: chatops/settings.py)."""
    text = settings.environ.get("CHATOPS_RESULTS_LINK_LIFETIME") or ""
    return (parse_duration(text) or DEFAULT_LIFETIME) if text.strip() else DEFAULT_LIFETIME


def public_url(settings: Settings) -> str | None:
    """Where people reach the web server (None: no links can be made)."""
    return (settings.environ.get("CHATOPS_WEB_PUBLIC_URL") or "").strip().rstrip("/") or None


def attach(settings: Settings, engine: Engine, job_id: int, files: list[dict[str, Any]],
           now: float | None = None) -> list[dict[str, Any]]:
    """``files`` (a report's result files) each with a fresh ``url`` and the time it ends
    (``until``), the calculation's record told to keep them that long; none when the site has
    no ``CHATOPS_WEB_PUBLIC_URL``."""
    base = public_url(settings)
    if not base or not files:  # (and no old link left in a re-sent report)
        return [{k: v for k, v in f.items() if k not in ("url", "until")} for f in files]
    now = time.time() if now is None else now
    signer = serializer(settings, SALT)
    until = now + lifetime(settings)
    linked = [{**f, "url": f"{base}{PATH}/{signer.dumps([job_id, f['name']])}/"
                           f"{quote(f['name'])}", "until": until} for f in files]
    store.keep_for_links(engine, job_id, until)
    return linked


@dataclass(frozen=True)
class Target:
    job_id: int
    name: str


def check(settings: Settings, token: str, name: str) -> Target:
    """The file a link names, or LinkRefused/LinkExpired saying why not."""
    signer = serializer(settings, SALT)
    age = lifetime(settings)
    try:
        job_id, signed_name = signer.loads(token, max_age=age)
    except SignatureExpired as exc:
        ended = exc.date_signed.timestamp() + age if exc.date_signed else None
        try:  # the signature was right, only old: the calculation it names can be told
            job_id = signer.load_payload(exc.payload)[0]
        except (BadSignature, ValueError, TypeError, IndexError, KeyError):
            job_id = None
        raise LinkExpired(_expired(ended, job_id)) from None
    except (BadSignature, ValueError, TypeError):
        raise LinkRefused(INVALID) from None
    if signed_name != name:
        raise LinkRefused(INVALID)
    return Target(int(job_id), signed_name)


INVALID = ("This download link is not valid: it was changed or cut short. Open the whole link "
           "from the chat message, or send `calc <id>` to the bot for a new one.")


def _expired(ended: float | None, job_id: object) -> str:
    when = f" on {clock(ended, date=True)}" if ended else ""
    calc = f"`calc {job_id}`" if isinstance(job_id, int) else "`calc <id>`"
    return (f"This download link expired{when}. Send {calc} to the bot for a new one (while "
            "the result files are kept).")
