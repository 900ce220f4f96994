"""Where new users of calculations may register: ``calculations["register_from"]``.

A place is ``platform:id`` (a Telegram chat, a Slack workspace ``T…`` or channel, a Discord
server or channel, a Matrix room, a console channel) or a bare platform name (anywhere on it;
``console`` is the console and the web console). Given as a list, or as a dict whose values are
the names people are told (``{"telegram:-1001234567890": "the HPC users group"}``). An empty
list means nobody registers themselves: an admin's ``approve`` makes a user. Left out: anyone,
anywhere. People who are users already, and admins, are never refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from chatops.events import Requester
from chatops.user_ids import CHANNEL_IDS

Places = Mapping[str, str]  # place -> the name people are told ("": describe the place)

_SLACK_WORKSPACE = re.compile(r"[T][A-Z0-9]+")
_PLATFORM_NAMES = {"slack": "Slack", "telegram": "Telegram", "discord": "Discord",
                   "matrix": "Matrix", "console": "the console"}
_KINDS = {"telegram": "Telegram chat", "discord": "Discord server or channel",
          "matrix": "Matrix room", "console": "console channel"}
FORMS = ("'telegram:<chat id>', 'slack:T0123ABCD' (a workspace) or 'slack:C0123ABCD' (a "
         "channel), 'discord:<server or channel id>', 'matrix:!room:server.example', or a "
         f"platform alone ({', '.join(sorted(_PLATFORM_NAMES))}: anywhere on it)")


def place_problem(value: object) -> str | None:
    """Why ``value`` names no place (None: it does)."""
    if not isinstance(value, str):
        return f"{value!r} is not a string; write a place as {FORMS}"
    if value in _PLATFORM_NAMES:
        return None
    platform, _, ident = value.partition(":")
    if platform in CHANNEL_IDS and CHANNEL_IDS[platform][0].fullmatch(ident):
        return None
    if platform == "slack" and _SLACK_WORKSPACE.fullmatch(ident):
        return None
    return f"{value!r} is not a place; write it as {FORMS}"


def build_places(error: Callable[[str, str], None], raw: Any) -> Places | None:
    """Validate ``register_from`` (None: left out, anyone may register)."""
    if raw is None:
        return None
    where = "calculations"
    if isinstance(raw, (list, tuple)):
        raw = {place: "" for place in raw}
    elif not isinstance(raw, Mapping):
        error(where, "'register_from' lists where new users may register: a list of places "
              "(['telegram:-1001234567890', 'slack:T0123ABCD']), or a dict of place -> the name "
              f"people are told; not {raw!r}")
        return None
    places: dict[str, str] = {}
    for place, name in raw.items():
        problem = place_problem(place)
        if problem:
            error(where, f"'register_from': {problem}")
        elif not isinstance(name, str):
            error(where, f"'register_from': the name of {place!r} is text people are told "
                  f"(such as 'the HPC users group'), not {name!r}")
        else:
            places[place] = name.strip()
    return places


def allows(places: Places, who: Requester) -> bool:
    """Whether ``who`` writes from one of ``places``."""
    for place in places:
        platform, _, ident = place.partition(":")
        if who.platform == platform and (not ident or ident in (who.channel, who.workspace)):
            return True
    return False


def describe(place: str, name: str) -> str:
    if name:
        return name
    platform, _, ident = place.partition(":")
    if not ident:
        return _PLATFORM_NAMES[platform] if platform == "console" else (
            f"anywhere on {_PLATFORM_NAMES[platform]}")
    if platform == "slack":
        return f"Slack {'workspace' if ident.startswith('T') else 'channel'} {ident}"
    return f"{_KINDS[platform]} {ident}"


def refusal(places: Places | None, who: Requester, *, is_user: bool, is_admin: bool
            ) -> str | None:
    """What ``who`` is told (after "Not submitted: " or the like) when they may not become a
    user from where they write; None: they may (or are one already)."""
    if places is None or is_user or is_admin or allows(places, who):
        return None
    if not places:
        return (f"new users of calculations are added by an admin. Ask one to approve you "
                f"(`approve {who.qualified_user}`).")
    named = [describe(place, name) for place, name in places.items()]
    listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} or {named[-1]}"
    return (f"new users register for calculations only from {listed}. Register there first "
            "(send a file, or /start on Telegram); after that you can run calculations from "
            "anywhere, here too.")
