"""Discord's REST API through discord.py's own HTTP client (no gateway connection needed).

discord.py has no base-URL option: ``discord.http.Route.BASE`` is set from DISCORD_API_URL
(default https://discord.com/api/v10). Rate limits: discord.py waits out short ones itself (up
to ``WAIT_IN_PLACE`` seconds); a longer ``retry_after`` surfaces as ``Throttled`` so the outbox
reschedules the delivery instead of blocking its thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

import discord
from discord.http import HTTPClient, Route, handle_message_parameters

from bot.asyncloop import LoopThread

DEFAULT_API_URL = "https://discord.com/api/v10"
WAIT_IN_PLACE = 1.0  # seconds of rate limit discord.py may sleep through before giving up
NO_MENTIONS = discord.AllowedMentions.none()  # job output must never ping @everyone


class Throttled(Exception):
    def __init__(self, retry_after: float):
        super().__init__(f"rate limited for {retry_after:g} s")
        self.retry_after = retry_after


class DiscordRest:
    def __init__(self, token: str, api_url: str | None = None):
        Route.BASE = (api_url or DEFAULT_API_URL).rstrip("/")
        self.token = token
        self.loop = LoopThread("discord-loop")
        self._http: HTTPClient | None = None

    async def _client(self) -> HTTPClient:
        if self._http is None:
            http = HTTPClient(asyncio.get_running_loop())
            # The constructor clamps this to >= 30 s; below that we prefer to reschedule.
            http.max_ratelimit_timeout = WAIT_IN_PLACE
            try:
                await http.static_login(self.token)
            except BaseException:  # a refused token or no API: no session left open
                await http.close()
                raise
            self._http = http
        return self._http

    def run(self, coro_fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``await coro_fn(http, *args)`` on the client's loop; map rate limits."""
        async def call() -> Any:
            http = await self._client()
            try:
                return await coro_fn(http, *args, **kwargs)
            except discord.RateLimited as exc:
                raise Throttled(exc.retry_after) from exc
            except discord.HTTPException as exc:
                if exc.status == 429:  # a 429 not from Discord's API itself (e.g. a proxy)
                    raise Throttled(float(exc.response.headers.get("Retry-After") or 5)) from exc
                raise

        return self.loop.run(call())

    def close(self) -> None:
        if self._http is not None:
            self.loop.run(self._http.close())
        self.loop.close()


def params(content: str | None = None, file: discord.File | None = None,
           flags: int | None = None, nonce: str | None = None) -> Any:
    kwargs: dict[str, Any] = {"allowed_mentions": NO_MENTIONS}
    if nonce is not None:
        kwargs["nonce"] = nonce
    if content is not None:
        kwargs["content"] = content
    if file is not None:
        kwargs["file"] = file
    if flags is not None:
        kwargs["flags"] = discord.MessageFlags._from_value(flags)
    built = handle_message_parameters(**kwargs)
    if nonce is not None and built.payload is not None and not built.files:
        # Discord then answers a resend within a few minutes with the message it already has.
        built.payload["enforce_nonce"] = True
    return built


async def post_message(http: HTTPClient, channel_id: str, content: str | None = None,
                       file: discord.File | None = None, nonce: str | None = None) -> Any:
    with params(content, file, nonce=nonce) as p:
        return await http.send_message(channel_id, params=p)


async def edit_message(http: HTTPClient, channel_id: str, message_id: str, content: str) -> Any:
    route = Route("PATCH", "/channels/{channel_id}/messages/{message_id}",
                  channel_id=channel_id, message_id=message_id)
    return await _send(http, route, params(content))


async def edit_original(http: HTTPClient, app_id: str, token: str, content: str | None = None,
                        file: discord.File | None = None) -> Any:
    route = Route("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
                  webhook_id=app_id, webhook_token=token)
    return await _send(http, route, params(content, file))


async def follow_up(http: HTTPClient, app_id: str, token: str, content: str | None = None,
                    file: discord.File | None = None) -> Any:
    route = Route("POST", "/webhooks/{webhook_id}/{webhook_token}", webhook_id=app_id,
                  webhook_token=token)
    return await _send(http, route, params(content, file))


async def _send(http: HTTPClient, route: Route, p: Any) -> Any:
    with p:
        if p.files:
            return await http.request(route, files=p.files, form=p.multipart)
        return await http.request(route, json=p.payload)


async def who_am_i(http: HTTPClient) -> Any:
    """The bot's own user (the token is checked by logging in)."""
    return await http.request(Route("GET", "/users/@me"))


async def put_commands(http: HTTPClient, app_id: str, commands: list[dict[str, Any]]) -> Any:
    return await http.bulk_upsert_global_commands(app_id, commands)
