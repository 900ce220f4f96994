"""A stand-in for Slack's Socket Mode websocket on 127.0.0.1 (aiohttp, in its own thread).

Slack sends ``hello`` on connect, then one envelope per event; the app answers each envelope
with ``{"envelope_id": …}`` to acknowledge it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from typing import Any

from aiohttp import WSMsgType, web


class FakeSocketMode:
    def __init__(self) -> None:
        self.acks: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self.acked = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._ws: web.WebSocketResponse | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def __enter__(self) -> FakeSocketMode:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # the free port the OS chose
        self.url = f"ws://127.0.0.1:{port}/link"

    async def _stop(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._ws = ws
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "connection_info": {"app_id": "A1"}}))
        self.connected.set()
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                with self.acked:
                    self.acks.append(json.loads(message.data))
                    self.acked.notify_all()
        return ws

    def send_event(self, body: dict[str, Any]) -> str:
        """Send one Events API payload; returns its envelope id."""
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "type": "events_api", "payload": body,
                    "accepts_response_payload": False, "retry_attempt": 0, "retry_reason": ""}
        assert self._ws is not None, "no Socket Mode client is connected"
        asyncio.run_coroutine_threadsafe(self._ws.send_str(json.dumps(envelope)),
                                         self._loop).result(10)
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10) -> None:
        with self.acked:
            if not self.acked.wait_for(
                    lambda: any(a.get("envelope_id") == envelope_id for a in self.acks), timeout):
                raise AssertionError(f"envelope {envelope_id} was not acknowledged: {self.acks}")
