"""Who a Slack user is: name and whether they are a guest, from users.info, cached.

Guests (``is_restricted`` single-channel or ``is_ultra_restricted`` multi-channel) may not run
restricted namespaces. A look-up that fails leaves ``is_guest`` unknown, which access rules treat
as "not a full member" — never the other way round.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

log = logging.getLogger("chatops.slack")

CACHE_SECONDS = 600.0  # a member demoted to guest loses access within this long


@dataclass(frozen=True)
class SlackUser:
    id: str
    name: str | None
    is_guest: bool | None  # None: unknown


class UserDirectory:
    def __init__(self, client: WebClient, cache_seconds: float = CACHE_SECONDS):
        self.client = client
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, SlackUser]] = {}
        self._lock = threading.Lock()
        self._looking: dict[str, threading.Lock] = {}  # one look-up per user at a time

    def get(self, user_id: str) -> SlackUser:
        with self._lock:
            one_user = self._looking.setdefault(user_id, threading.Lock())
        with one_user:
            return self._get(user_id)

    def _get(self, user_id: str) -> SlackUser:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(user_id)
        if hit and hit[0] > now:
            return hit[1]
        try:
            info = self.client.users_info(user=user_id)["user"]
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("users.info for %s failed (%s); treating them as a guest for now",
                        user_id, exc)
            return SlackUser(user_id, None, None)
        user = SlackUser(
            id=user_id,
            name=info.get("name"),
            is_guest=bool(info.get("is_restricted") or info.get("is_ultra_restricted")),
        )
        with self._lock:
            self._cache[user_id] = (now + self.cache_seconds, user)
        return user
