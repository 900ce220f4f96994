"""A stand-in for Discord's REST API (``/api/v10``) on 127.0.0.1: messages, interaction
webhooks, command registration; JSON and multipart bodies decoded; calls recorded; 429s (with
Discord's ``Via`` header and ``retry_after`` body) on demand. Plus a signer for interactions."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nacl.encoding import HexEncoder
from nacl.signing import SigningKey

from tests.support.serving import serve_in_thread

APP_ID = "555000111"


@dataclass
class Call:
    method: str
    path: str
    body: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    auth: str = ""
    at: float = field(default_factory=time.time)


class FakeDiscord:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.failures: list[list[Any]] = []
        self.next_id = 9000
        self.files: dict[str, bytes] = {}  # attachments users sent: path -> content
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def handle_any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0].removeprefix("/api/v10")
                if self.command == "GET" and path in fake.files:  # an attachment's CDN url
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(fake.files[path])))
                    self.end_headers()
                    self.wfile.write(fake.files[path])
                    return
                data, files = _decode(self.headers.get("Content-Type", ""), body)
                status, answer = fake.answer(Call(self.command, path, data, files,
                                                  self.headers.get("Authorization", "")))
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                if status == 429:
                    self.send_header("Via", "1.1 google")
                    self.send_header("Retry-After", str(answer["retry_after"]))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PATCH = do_PUT = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/v10"
        serve_in_thread(self.server)

    def attach(self, attachment_id: str, name: str, data: bytes) -> dict[str, Any]:
        """A file sent with a slash command: its entry in ``data.resolved.attachments``."""
        path = f"/attachments/777/{attachment_id}/{name}"
        self.files[path] = data
        return {"id": attachment_id, "filename": name, "size": len(data),
                "url": f"{self.url}{path}", "content_type": "text/plain"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, path_pattern: str, status: int = 429, retry_after: float = 5.0,
                  after: int = 0) -> None:
        """Fail the next call to a matching path (or the one after ``after`` more)."""
        body: dict[str, Any] = {"message": "You are being rate limited.", "code": 0}
        if status == 429:
            body.update(retry_after=retry_after, **{"global": False})
        elif status == 403:
            body = {"message": "Missing Access", "code": 50001}
        elif status == 404:  # a message deleted in the channel
            body = {"message": "Unknown Message", "code": 10008}
        self.failures.append([path_pattern, status, body, after])

    def answer(self, call: Call) -> tuple[int, dict[str, Any]]:
        if call.path != "/users/@me":
            self.calls.append(call)
        for index, (pattern, status, body, after) in enumerate(self.failures):
            if re.fullmatch(pattern, call.path):
                if after:
                    self.failures[index][3] -= 1
                    break
                del self.failures[index]
                return status, body
        if call.path == "/users/@me":
            return 200, {"id": "1", "username": "chatops", "discriminator": "0",
                         "avatar": None, "bot": True}
        if call.method == "PUT":
            return 200, call.body  # the commands, as registered
        self.next_id += 1
        channel = call.path.split("/")[2] if call.path.startswith("/channels/") else "1"
        return 200, {"id": str(self.next_id), "channel_id": channel, "type": 0,
                     "content": call.body.get("content", ""), "author": {"id": "1"}}

    def sent(self, path_prefix: str = "") -> list[Call]:
        return [c for c in list(self.calls) if c.path.startswith(path_prefix)]

    def wait_sent(self, count: int, path_prefix: str = "", timeout: float = 15) -> list[Call]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            calls = self.sent(path_prefix)
            if len(calls) >= count:
                return calls
            time.sleep(0.02)
        got = [(c.method, c.path, str(c.body.get("content"))[:80]) for c in self.sent()]
        raise AssertionError(f"expected {count} calls under {path_prefix!r}, got {got}")


def _decode(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, tuple]]:
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        data: dict[str, Any] = {}
        files: dict[str, tuple[str, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if name == "payload_json":
                data = json.loads(payload)
            elif part.get_filename():
                files[name] = (part.get_filename(), payload)
        return data, files
    return (json.loads(body) if body else {}), {}


class Signer:
    """Signs interactions the way Discord does, with a key made for the test."""

    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.public_hex = self.key.verify_key.encode(HexEncoder).decode()

    def headers(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        timestamp = timestamp or str(int(time.time()))
        signature = self.key.sign(timestamp.encode() + body).signature.hex()
        return {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": timestamp,
                "Content-Type": "application/json"}


def interaction(name: str, *, options: dict[str, str] | None = None, token: str = "tok-1",
                channel: str = "777", guild: str | None = "888", user_id: str = "4242",
                username: str = "alice") -> dict[str, Any]:
    user = {"id": user_id, "username": username, "global_name": username.title()}
    data: dict[str, Any] = {
        "id": "1", "application_id": APP_ID, "type": 2, "token": token, "version": 1,
        "channel_id": channel,
        "data": {"id": "2", "name": name, "type": 1,
                 "options": [{"name": k, "type": 3, "value": v}
                             for k, v in (options or {}).items()]}}
    if guild:
        data["guild_id"] = guild
        data["member"] = {"user": user, "roles": []}
    else:
        data["user"] = user
    return data
