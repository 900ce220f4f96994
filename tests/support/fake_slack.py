"""A stand-in for Slack's Web API on 127.0.0.1: records every call and answers like Slack.

``POST /<method>`` with a form or JSON body (slack_sdk sends both), the token in
``Authorization: Bearer``. ``fail(...)`` makes chosen calls fail (HTTP 429 with Retry-After, or
``ok: false`` with an error) a number of times.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from tests.support.serving import server_thread

BOT_TOKEN = "xoxb-test-bot-token-0123456789"
APP_TOKEN = "xapp-test-app-token-0123456789"
SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_USER = "UBOT"
KNOWN_BLOCKS = {"section", "divider", "header", "context", "image", "actions", "rich_text",
                "input", "file", "video"}
CHANNEL_NAMES = {"#chatops": "CCHATOPS", "#support": "CSUPPORT"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.time)


@dataclass
class Failure:
    method: str
    when: Callable[[dict[str, Any]], bool]
    times: int
    status: int
    error: str
    headers: dict[str, str]


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.uploads: dict[str, bytes] = {}
        self.downloads: dict[str, bytes] = {}  # files users shared: path -> content
        self.file_names: dict[str, str] = {}
        self.users: dict[str, dict[str, Any]] = {
            "U_MEMBER": {"id": "U_MEMBER", "name": "bob"},
            "UADMIN1": {"id": "UADMIN1", "name": "alice"},
            "U_GUEST": {"id": "U_GUEST", "name": "gus", "is_restricted": True},
            "UOPS1": {"id": "UOPS1", "name": "olga"},
            "U_ULTRA": {"id": "U_ULTRA", "name": "uma", "is_ultra_restricted": True},
            "USLACKBOT": {"id": "USLACKBOT", "name": "slackbot"},
        }
        self.failures: list[Failure] = []
        self.socket_url: str | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._ts = itertools.count(1)
        self.history: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (channel, thread)
        self._files = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self._thread = server_thread(self.server)

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what tests use ---------------------------------------------------------------------

    def fail(self, method: str, *, times: int = 1, status: int = 200, error: str = "ratelimited",
             retry_after: int | None = None,
             when: Callable[[dict[str, Any]], bool] = lambda p: True) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self._lock:
            self.failures.append(Failure(method, when, times, status, error, headers))

    def share(self, file_id: str, name: str, data: bytes) -> dict[str, Any]:
        """A file a user shares: its entry in a message event's ``files``."""
        self.downloads[f"files-pri/T1-{file_id}/download/{name}"] = data
        return {"id": file_id, "name": name, "size": len(data), "mimetype": "text/plain",
                "url_private_download": f"{self.url}files-pri/T1-{file_id}/download/{name}"}

    def of(self, *methods: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method in methods]

    def wait_until(self, predicate: Callable[[list[Call]], bool], timeout: float = 15
                 ) -> list[Call]:
        deadline = time.time() + timeout
        with self._cond:
            while not predicate(self.calls):
                left = deadline - time.time()
                if left <= 0:
                    shown = "\n".join(f"  {c.method} {c.params}" for c in self.calls)
                    raise AssertionError(f"timed out waiting; calls so far:\n{shown}")
                self._cond.wait(left)
            return list(self.calls)

    def wait_count(self, method: str, count: int, timeout: float = 15) -> list[Call]:
        self.wait_until(lambda calls: sum(c.method == method for c in calls) >= count, timeout)
        return self.of(method)

    # -- answering --------------------------------------------------------------------------

    def answer(self, method: str, params: dict[str, Any], token: str | None
               ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._cond:
            self.calls.append(Call(method, params, token))
            self._cond.notify_all()
            for failure in self.failures:
                if failure.method == method and failure.times > 0 and failure.when(params):
                    failure.times -= 1
                    return failure.status, failure.headers, {"ok": False, "error": failure.error}
        if method == "apps.connections.open":
            if token != APP_TOKEN:
                return 200, {}, {"ok": False, "error": "invalid_auth"}
            return 200, {}, {"ok": True, "url": self.socket_url or "ws://127.0.0.1:9/"}
        if token != BOT_TOKEN:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        return 200, {}, self._result(method, params)

    def _result(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://test.slack.com/", "team": "Test", "user": "chatops",
                    "team_id": "T1", "user_id": BOT_USER, "bot_id": "BBOT"}
        if method == "users.info":
            user = self.users.get(params.get("user", ""))
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "chat.postMessage":
            blocks = params.get("blocks")
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            if blocks and any(b.get("type") not in KNOWN_BLOCKS for b in blocks):
                return {"ok": False, "error": "invalid_blocks"}
            channel = params.get("channel", "")
            channel = CHANNEL_NAMES.get(channel, channel)
            if channel.startswith("U"):
                channel = "D" + channel[1:]
            ts = f"{1700000000 + next(self._ts)}.000100"
            metadata = params.get("metadata")
            if isinstance(metadata, str):
                metadata = json.loads(metadata)
            message = {"text": params.get("text"), "ts": ts,
                       "thread_ts": params.get("thread_ts") or ts}
            if metadata:
                message["metadata"] = metadata
            self.history.setdefault((channel, message["thread_ts"]), []).append(message)
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "conversations.replies":
            channel = CHANNEL_NAMES.get(params.get("channel", ""), params.get("channel", ""))
            return {"ok": True, "channel": channel,
                    "messages": self.history.get((channel, params.get("ts")), [])}
        if method == "chat.update":
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts"),
                    "text": params.get("text")}
        if method in ("reactions.add", "pins.add"):
            return {"ok": True}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + params.get("users", "X")[1:]}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._files)}"
            self.file_names[file_id] = params.get("filename", "")
            return {"ok": True, "file_id": file_id, "upload_url": f"{self.url}upload/{file_id}"}
        if method == "files.completeUploadExternal":
            files = params.get("files")
            files = json.loads(files) if isinstance(files, str) else files
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        return {"ok": False, "error": "unknown_method"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = self.path.lstrip("/").split("?")[0]
                if path.startswith("upload/"):
                    with fake._cond:
                        fake.uploads[path.split("/", 1)[1]] = body
                        fake.calls.append(Call("upload", {"file_id": path.split("/", 1)[1],
                                                          "size": len(body)}, None))
                        fake._cond.notify_all()
                    self._send(200, {}, b"OK - %d" % len(body), "text/plain")
                    return
                params = self._params(body)
                auth = self.headers.get("Authorization", "")
                token = auth[len("Bearer "):] if auth.startswith("Bearer ") else params.get("token")
                status, headers, result = fake.answer(path, params, token)
                self._send(status, headers, json.dumps(result).encode(), "application/json")

            def do_GET(self) -> None:  # a shared file's url_private_download
                path = self.path.lstrip("/")
                auth = self.headers.get("Authorization", "")
                with fake._cond:
                    fake.calls.append(Call("download", {"path": path}, auth[len("Bearer "):]))
                data = fake.downloads.get(path)
                if data is None or not auth.startswith("Bearer "):
                    self._send(404 if data is None else 403, {}, b"", "text/plain")
                else:
                    self._send(200, {}, data, "application/octet-stream")

            def _params(self, body: bytes) -> dict[str, Any]:
                kind = self.headers.get("Content-Type", "")
                if "json" in kind:
                    return json.loads(body or b"{}")
                return dict(parse_qsl(body.decode(), keep_blank_values=True))

            def _send(self, status: int, headers: dict[str, str], body: bytes,
                      kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler
