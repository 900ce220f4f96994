"""A stand-in for the Telegram Bot API on 127.0.0.1: ``/bot<token>/<method>`` answering
``{"ok": true, "result": ...}``, with getUpdates long polls that honour ``offset``, form and
multipart bodies decoded, every call recorded, and failures (429 with retry_after) on demand."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.support.serving import serve_in_thread

BOT_ID = 999
BOT_USERNAME = "chatops_test_bot"
JSON_FIELDS = {"reply_parameters", "allowed_updates", "reaction", "reply_markup", "entities",
               "link_preview_options"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


class FakeTelegram:
    def __init__(self, token: str):
        self.token = token
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.offsets: list[int] = []
        self.failures: dict[str, list[list[Any]]] = {}
        self.cond = threading.Condition()
        self.next_update_id = 100
        self.next_message_id = 5000
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, content)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                downloads = f"/file/bot{fake.token}/"
                path = unquote(self.path)  # PTB quotes the token's ':' in download URLs
                if path.startswith(downloads):
                    return self._file(path[len(downloads):])
                prefix = f"/bot{fake.token}/"
                if not self.path.startswith(prefix):
                    return self._answer(404, {"ok": False, "error_code": 404,
                                              "description": "Not Found"})
                method = self.path[len(prefix):]
                params, files = _decode(self.headers.get("Content-Type", ""), body)
                status, answer = fake.answer(method, params, files)
                return self._answer(status, answer)

            do_GET = do_POST

            def _file(self, path: str) -> None:
                found = [data for file_path, data in fake.files.values() if file_path == path]
                self.send_response(200 if found else 404)
                self.send_header("Content-Length", str(len(found[0]) if found else 0))
                self.end_headers()
                if found:
                    self.wfile.write(found[0])

            def _answer(self, status: int, answer: dict[str, Any]) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # a poll given up on: fine
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        serve_in_thread(self.server)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- test controls ----------------------------------------------------------------------

    def fail_next(self, method: str, status: int = 429, retry_after: int = 3,
                  description: str = "", after: int = 0) -> None:
        """Make a call of ``method`` fail: the next one, or the one after ``after`` more."""
        body = {"ok": False, "error_code": status,
                "description": description or f"Too Many Requests: retry after {retry_after}"}
        if status == 429:
            body["parameters"] = {"retry_after": retry_after}
        self.failures.setdefault(method, []).append([after, body])

    def push(self, message: dict[str, Any]) -> int:
        with self.cond:
            update_id = self.next_update_id
            self.next_update_id += 1
            self.updates.append({"update_id": update_id, "message": message})
            self.cond.notify_all()
        return update_id

    def add_file(self, file_id: str, name: str, data: bytes) -> dict[str, Any]:
        """A file users can send (getFile and its download serve it); its Document."""
        self.files[file_id] = (f"documents/{file_id}-{name}", data)
        return {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_name": name,
                "file_size": len(data)}

    def sent(self, *methods: str) -> list[Call]:
        methods = methods or ("sendMessage", "sendDocument")
        return [c for c in list(self.calls) if c.method in methods]

    def wait_sent(self, count: int, timeout: float = 15, *methods: str) -> list[Call]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            calls = self.sent(*methods)
            if len(calls) >= count:
                return calls
            time.sleep(0.02)
        got = [(c.method, str(c.params.get("text") or c.params.get("caption"))[:80])
               for c in self.sent(*methods)]
        raise AssertionError(f"expected {count} calls, got {len(got)}: {got}")

    # -- the API ----------------------------------------------------------------------------

    def answer(self, method: str, params: dict[str, Any], files: dict[str, tuple[str, bytes]]
               ) -> tuple[int, dict[str, Any]]:
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        self.calls.append(Call(method, params, files))
        queued = self.failures.get(method)
        if queued:
            if queued[0][0] > 0:
                queued[0][0] -= 1
            else:
                failure = queued.pop(0)[1]
                return failure["error_code"], failure
        if method == "getFile":
            file_path, data = self.files[params["file_id"]]
            return 200, {"ok": True, "result": {"file_id": params["file_id"],
                                                "file_unique_id": f"u-{params['file_id']}",
                                                "file_size": len(data), "file_path": file_path}}
        if method == "getMe":
            return 200, {"ok": True, "result": {"id": BOT_ID, "is_bot": True,
                                                "first_name": "ChatOps",
                                                "username": BOT_USERNAME}}
        if method in ("sendMessage", "sendDocument"):
            self.next_message_id += 1
            result: dict[str, Any] = {"message_id": self.next_message_id, "date": int(time.time()),
                                      "chat": {"id": int(params["chat_id"]), "type": "private"}}
            if method == "sendMessage":
                result["text"] = params.get("text", "")
            else:
                name = next(iter(files.values()))[0] if files else "file"
                result["document"] = {"file_id": "F1", "file_unique_id": "U1",
                                      "file_name": name}
            return 200, {"ok": True, "result": result}
        return 200, {"ok": True, "result": True}  # setWebhook, deleteWebhook, reactions...

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), 0.3)  # short polls keep tests fast
        with self.cond:
            self.offsets.append(offset)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            if not self.updates:
                self.cond.wait(wait)
            return [u for u in self.updates if u["update_id"] >= offset]


def _decode(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, tuple]]:
    params: dict[str, Any] = {}
    files: dict[str, tuple[str, bytes]] = {}
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True)
            if part.get_filename():
                files[name] = (part.get_filename(), data)
            else:
                params[name] = data.decode()
    elif content_type.startswith("application/json"):
        params = json.loads(body or b"{}")
    else:
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    for key in JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            params[key] = json.loads(params[key])
    return params, files


def user(user_id: int = 42, username: str = "alice") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": username.title(), "username": username}


def private_message(text: str, *, chat_id: int = 42, message_id: int = 1,
                    sender: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"message_id": message_id, "date": int(time.time()), "text": text,
            "chat": {"id": chat_id, "type": "private", "first_name": "Alice"},
            "from": sender or user(chat_id), **extra}


def group_message(text: str, *, chat_id: int = -1001234, message_id: int = 1,
                  sender: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    entities = []
    if text.startswith("/"):
        entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
    mention = f"@{BOT_USERNAME}"
    if mention in text:
        entities.append({"type": "mention", "offset": text.index(mention),
                         "length": len(mention)})
    message = {"message_id": message_id, "date": int(time.time()), "text": text,
               "chat": {"id": chat_id, "type": "supergroup", "title": "HPC team"},
               "from": sender or user(), **extra}
    if entities:
        message["entities"] = entities
    return message
