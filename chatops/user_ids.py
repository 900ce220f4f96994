"""How access rules name people and channels: ``platform:id``, with the platform's own id.

A display name, a username or a first name is chosen by its owner and can be changed to anyone
else's; the ids below are given by the platform and never change, so only they decide access
(``allowed_users``, ``admins``). The console and the web console have identities too:
``console:<login name>`` and ``web:<dashboard user>``.
"""

from __future__ import annotations

import re

# platform -> (the shape of a user id, how to find it)
USER_IDS: dict[str, tuple[re.Pattern[str], str]] = {
    "slack": (re.compile(r"[UW][A-Z0-9]+"),
              "slack:U0123ABCD (in Slack: the person's profile → ⋮ → Copy member ID)"),
    "telegram": (re.compile(r"[1-9][0-9]*"),
                 "telegram:123456789 (the numeric user id; a refused user is told theirs)"),
    "discord": (re.compile(r"[1-9][0-9]*"),
                "discord:<user id> (Developer Mode on, right-click the user → Copy User ID)"),
    "matrix": (re.compile(r"@[^\s:]+:\S+"), "matrix:@name:server.example"),
    "console": (re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*"), "console:<login name>"),
    "web": (re.compile(r"[^\s:]+"), "web:<dashboard user> (web:admin for the token login)"),
}

# platform -> the shape of a channel id (where the admin channel may be)
CHANNEL_IDS: dict[str, tuple[re.Pattern[str], str]] = {
    "slack": (re.compile(r"[CGD][A-Z0-9]+"), "slack:C0123ABCD (the channel's id, not #name)"),
    "telegram": (re.compile(r"-?[1-9][0-9]*"), "telegram:-1001234567890 (the chat id)"),
    "discord": (re.compile(r"[1-9][0-9]*"), "discord:<channel id>"),
    "matrix": (re.compile(r"![^\s:]+:\S+"), "matrix:!room:server.example"),
    "console": (re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*"),
                "console:<name> (shown on the dashboard)"),
}


def qualified(platform: str, user: str) -> str:
    """``platform:id`` of whoever asked. The web console's users (``web:<name>``) travel as
    console requests (their replies wait for the browser), so their user id already says web."""
    if platform == "console" and user.startswith("web:"):
        return user
    return f"{platform}:{user}"


def _forms(table: dict[str, tuple[re.Pattern[str], str]]) -> str:
    return ", ".join(example for _, example in table.values())


def user_id_problem(value: object) -> str | None:
    """Why ``value`` cannot name a person in an access rule (None: it can)."""
    if not isinstance(value, str):
        return f"{value!r} is not a string; write people as 'platform:id'"
    platform, sep, user = value.partition(":")
    if sep and platform in USER_IDS:
        shape, example = USER_IDS[platform]
        if shape.fullmatch(user):
            return None
        return f"{user!r} is not a {platform} user id; write it as {example}"
    if re.fullmatch(r"[UW][A-Z0-9]{6,}", value):
        return f"{value!r} looks like a Slack member id: write 'slack:{value}'"
    if value.isdigit():
        return (f"{value!r} is a number: say whose it is, 'telegram:{value}' or "
                f"'discord:{value}'")
    if value.startswith("@") and ":" in value:
        return f"{value!r} looks like a Matrix user: write 'matrix:{value}'"
    return (f"{value!r} is a name, and anyone can give themselves a name; access rules use the "
            f"id each platform gives a person, written 'platform:id': {_forms(USER_IDS)}. "
            "Someone refused is told their id")


def channel_problem(value: object) -> str | None:
    """Why ``value`` cannot name the admin channel (None: it can)."""
    if not isinstance(value, str):
        return f"{value!r} is not a string; write the channel as 'platform:channel id'"
    platform, _, channel = value.partition(":")
    if platform in CHANNEL_IDS and CHANNEL_IDS[platform][0].fullmatch(channel):
        return None
    return (f"{value!r} is not a channel; write it as 'platform:channel id', one of: "
            f"{_forms(CHANNEL_IDS)}")
