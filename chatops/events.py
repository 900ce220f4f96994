"""Typed objects passed between the parts: who asked, and where the answer goes."""

from __future__ import annotations

from dataclasses import dataclass

from chatops.user_ids import qualified


@dataclass(frozen=True)
class Requester:
    """Who asked for something and where the answer goes back."""

    platform: str  # console, slack, telegram, discord, github, ...
    user: str  # the platform's immutable user id (the console: the login name)
    channel: str | None = None
    thread: str | None = None  # the thread to answer in, when the platform has threads
    message: str | None = None  # the request's message id (for reactions)
    is_direct: bool = False  # a direct message: no support-channel alerts
    user_name: str | None = None  # for showing only: anyone can choose any name
    is_guest: bool | None = None  # None: the platform has not said
    workspace: str | None = None  # what the channel is in: Slack's team, Discord's server

    @property
    def qualified_user(self) -> str:
        """``platform:id``, as access rules name people (chatops/user_ids.py)."""
        return qualified(self.platform, self.user)
