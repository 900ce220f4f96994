"""Typed objects passed between the parts: who asked, and where the answer goes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Requester:
    """Who asked for something and where the answer goes back."""

    platform: str  # console, slack, telegram, discord, github, ...
    user: str  # the platform's user id (or a name where the platform has no ids)
    channel: str | None = None
    thread: str | None = None  # the thread to answer in, when the platform has threads
    message: str | None = None  # the request's message id (for reactions)
    is_direct: bool = False  # a direct message: no support-channel alerts
    user_name: str | None = None
    is_guest: bool | None = None  # None: the platform has not said

    @property
    def qualified_user(self) -> str:
        return f"{self.platform}:{self.user}"
