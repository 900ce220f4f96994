"""Stand-ins for the notification tests and bench: chat APIs with per-target rate limits,
an SMTP server, MailProg-shaped events, and a service on a temporary database."""

from __future__ import annotations

import email
import json
import random
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Engine, select

from chatops import migrate
from chatops.db import notify_events, reading
from chatops.service import Service, open_service
from chatops.settings import load_settings
from tests.support.serving import serve_in_thread

TELEGRAM_TOKEN = "123456:notify-test-token-abcdef"
SLACK_TOKEN = "xoxb-notify-test-token-0123456789"
DISCORD_TOKEN = "discord-notify-test-token-0123456789"
# The rest of what the Discord bot needs to start (it sends the Discord notifications).
DISCORD_ENV = {"DISCORD_APPLICATION_ID": "100000000000000001",
               "DISCORD_PUBLIC_KEY": "3b6a27bcceb6a42d62a3a8d02a6f0d73"
                                     "653215771de243a63ac048a18b59da29"}

CONFIG = '''
raw_config = {"example": {"description": "Example", "jobs": {
    "hello": {"run_args_template": "echo hi"}}}}
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_service(tmp_path: Path, **env: str) -> Service:
    config = tmp_path / "job_configs.py"
    config.write_text(CONFIG)
    settings = load_settings({
        "CHATOPS_HOME": str(tmp_path / "home"), "CHATOPS_CONFIG": str(config),
        "CHATOPS_WORKSPACE_DIR": str(tmp_path), "CHATOPS_POLL_INTERVAL": "0.1",
        "CHATOPS_SPOOL_DIR": str(tmp_path / "spool"),
        "CHATOPS_RUN_DIR": tempfile.mkdtemp(prefix="chatops-run-"), **env})
    service = open_service(settings, need_schema=False)
    migrate.upgrade(service.queue.engine)
    return service


def event(job_id: int = 9, mail_type: str = "Ended", state: str = "COMPLETED",
          name: str = "ok_job", mail_user: str = "telegram:42", exit_status: int = 0,
          user: str = "alice", event_id: str | None = None, **env: str) -> dict[str, Any]:
    """A MailProg event as chatops-mailprog writes it (Slurm 22.05's variables)."""
    words = {"Began": "Began, Queued time 00:00:01", "Ended": f"Ended, Run time 00:00:04, "
             f"{state}, ExitCode {exit_status >> 8}",
             "Failed": f"Failed, Run time 00:00:04, {state}, ExitCode {exit_status >> 8}"}
    subject = f"Slurm Job_id={job_id} Name={name} {words.get(mail_type, mail_type)}"
    values = {
        "SLURM_CLUSTER_NAME": "testcluster", "SLURM_JOB_ID": str(job_id),
        "SLURM_JOB_NAME": name, "SLURM_JOB_MAIL_TYPE": mail_type, "SLURM_JOB_STATE": state,
        "SLURM_JOB_USER": user, "SLURM_JOB_UID": "1000", "SLURM_JOB_PARTITION": "debug",
        "SLURM_JOB_NODELIST": "vm", "SLURM_JOB_NUM_NODES": "1",
        "SLURM_JOB_WORK_DIR": "/home/alice", "SLURM_JOB_ACCOUNT": "root",
    }
    if mail_type in ("Ended", "Failed"):
        values.update(SLURM_JOB_EXIT_CODE=str(exit_status), SLURM_JOB_RUN_TIME="00:00:04",
                      SLURM_JOB_EXIT_CODE2=f"{exit_status >> 8}:0")
    values.update(env)
    event_id = event_id or (f"{time.time_ns()}-{random.randrange(99999)}-"
                            f"{random.randrange(16**8):08x}")
    return {"version": 1, "id": event_id, "argv": ["-s", subject, mail_user],
            "subject": subject, "mail_user": mail_user, "env": values,
            "received_at": "2026-11-24T00:08:14.038585+00:00", "host": "vm"}


def spool(directory: Path, data: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{data['id']}.json"
    path.write_text(json.dumps(data))
    return path




class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # a burst opens many connections at once; 5 would reset some


@dataclass
class Received:
    api: str
    target: str
    body: dict[str, Any]
    at: float = field(default_factory=time.time)


class FakeChatApi:
    """Telegram sendMessage, Slack chat.postMessage and a Teams webhook on one port.

    Per-target rate limit: a second message to a target within ``per_target`` seconds gets
    429 with Retry-After (and counts as a violation). ``fail_rate`` answers that share of
    requests with HTTP 500; targets in ``dead`` are refused for good; ``storm_until`` answers
    every request with 429 until then.
    """

    def __init__(self, per_target: float = 0.0, fail_rate: float = 0.0, seed: int = 7):
        self.per_target = per_target
        self.fail_rate = fail_rate
        self.rng = random.Random(seed)
        self.dead: set[str] = set()  # refused for good (403 / channel_not_found)
        self.broken: set[str] = set()  # always HTTP 500
        self.storm_until = 0.0
        self.storm_retry_after = 1.0
        self.accepted: list[Received] = []
        self.requests = 0
        self.violations = 0
        self.last: dict[str, float] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = self.headers.get("Content-Type", "")
                params = (json.loads(body or b"{}") if "json" in kind
                          else dict(parse_qsl(body.decode(), keep_blank_values=True)))
                status, headers, answer = fake.answer(self.path, params,
                                                      self.headers.get("Authorization", ""))
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        serve_in_thread(self.server)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self, api: str | None = None, target: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.accepted if (api is None or r.api == api)
                    and (target is None or r.target == target)]

    def _verdict(self, target: str) -> tuple[str, float]:
        """("ok" | "limit" | "fail" | "dead", retry_after)"""
        now = time.time()
        with self.lock:
            self.requests += 1
            if target in self.dead:
                return "dead", 0
            if target in self.broken:
                return "fail", 0
            if now < self.storm_until:
                return "limit", self.storm_retry_after
            if self.fail_rate and self.rng.random() < self.fail_rate:
                return "fail", 0
            last = self.last.get(target)
            # Network jitter moves arrivals by a few ms; a real API's window is as lenient.
            if last is not None and now - last < self.per_target - min(0.02, self.per_target / 4):
                self.violations += 1
                return "limit", round(self.per_target - (now - last), 3) + 0.01
            self.last[target] = now
            return "ok", 0

    def answer(self, path: str, params: dict[str, Any], auth: str
               ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if path == "/stats":  # for a stand-in run in another process (bench/notify.py)
            with self.lock:
                return 200, {}, {"requests": self.requests, "violations": self.violations,
                                 "accepted": [[r.api, r.target, r.body.get("text", "")]
                                              for r in self.accepted]}
        if path.startswith("/bot"):
            return self._telegram(path, params)
        if path.startswith("/api/"):
            return self._slack(path, params, auth)
        return self._teams(path, params)

    def _record(self, api: str, target: str, params: dict[str, Any]) -> None:
        with self.lock:
            self.accepted.append(Received(api, target, params))

    def _telegram(self, path: str, params: dict[str, Any]) -> tuple[int, dict, dict]:
        if not path.startswith(f"/bot{TELEGRAM_TOKEN}/"):
            return 404, {}, {"ok": False, "error_code": 404, "description": "Not Found"}
        method = path.rsplit("/", 1)[1]
        if method == "getMe":
            return 200, {}, {"ok": True, "result": {"id": 1, "is_bot": True,
                                                    "first_name": "b", "username": "b"}}
        if method == "getUpdates":  # a bot process long-polls: nothing ever arrives here
            threading.Event().wait(min(float(params.get("timeout") or 0), 1.0))
            return 200, {}, {"ok": True, "result": []}
        if method in ("deleteWebhook", "setWebhook", "setMyCommands", "deleteMyCommands"):
            return 200, {}, {"ok": True, "result": True}
        target = str(params.get("chat_id"))
        verdict, wait = self._verdict(target)
        if verdict == "limit":
            seconds = max(1, round(wait))
            return 429, {}, {"ok": False, "error_code": 429, "parameters": {
                "retry_after": seconds}, "description": f"Too Many Requests: retry after "
                f"{seconds}"}
        if verdict == "fail":
            return 500, {}, {"ok": False, "error_code": 500, "description": "Internal"}
        if verdict == "dead":
            return 403, {}, {"ok": False, "error_code": 403,
                             "description": "Forbidden: bot was blocked by the user"}
        self._record("telegram", target, params)
        return 200, {}, {"ok": True, "result": {
            "message_id": len(self.accepted), "date": int(time.time()),
            "chat": {"id": int(target), "type": "private"}, "text": params.get("text", "")}}

    def _slack(self, path: str, params: dict[str, Any], auth: str) -> tuple[int, dict, dict]:
        if auth != f"Bearer {SLACK_TOKEN}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        target = str(params.get("channel"))
        verdict, wait = self._verdict(target)
        if verdict == "limit":
            return 429, {"Retry-After": f"{wait:g}"}, {"ok": False, "error": "ratelimited"}
        if verdict == "fail":
            return 500, {}, {"ok": False, "error": "internal_error"}
        if verdict == "dead":
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        self._record("slack", target, params)
        return 200, {}, {"ok": True, "channel": target, "ts": f"{time.time():.6f}"}

    def _teams(self, path: str, params: dict[str, Any]) -> tuple[int, dict, dict]:
        verdict, wait = self._verdict("teams")
        if verdict == "limit":
            return 429, {"Retry-After": f"{wait:g}"}, {}
        if verdict != "ok":
            return 500, {}, {}
        self._record("msteams", path, params)
        return 200, {}, {}


class MailSink:
    """aiosmtpd on a free 127.0.0.1 port, keeping every message (after a login with ``user``
    and ``password`` when they are given)."""

    def __init__(self, user: str | None = None, password: str | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[email.message.EmailMessage] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.messages.append(email.message_from_bytes(envelope.content,
                                                              policy=email_policy))
                return "250 OK"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                          auth_data: Any) -> AuthResult:
            return AuthResult(success=(auth_data.login.decode(), auth_data.password.decode())
                              == (user, password))

        self.port = free_port()
        login = ({"authenticator": authenticator, "auth_required": True,
                  "auth_require_tls": False} if password else {})
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **login)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


class Senders:
    """The real sender of every configured platform, on this thread: what `chatops bot X`
    (Slack, Telegram, Discord, Matrix) and `chatops dispatcher` (mail, Teams) run."""

    def __init__(self, service: Service, cfg: Any = None) -> None:
        from bot.registry import PLATFORMS, platform_class
        from bot.sender import Sender
        from bot.slack import SlackPlatform
        from bot.slack.config import SlackSettings
        from chatops.notify.config import load_notify_config

        cfg = cfg or load_notify_config(service.config.notifications, service.settings.environ)
        self.platforms = []
        for name in PLATFORMS:
            kind = platform_class(name)
            if name == "console" or not kind.is_configured_for(service):
                continue
            if name == "slack":  # without auth.test: the stand-in counts every request
                self.platforms.append(SlackPlatform(SlackSettings.from_settings(
                    service.settings), {}))
            else:
                self.platforms.append(kind.create(service))
        self.senders = {p.name: Sender(service.queue.engine, p, cfg, attempts=cfg.attempts,
                                       poll_interval=0.05) for p in self.platforms}

    def __getitem__(self, name: str) -> Any:
        return self.senders[name]

    def step(self, timeout: float = 0.05) -> None:
        for sender in self.senders.values():
            sender.step(timeout / max(1, len(self.senders)))

    def poke(self) -> None:
        for sender in self.senders.values():
            sender.poke()

    def idle(self) -> bool:
        return all(sender.idle() for sender in self.senders.values())

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()

    def close(self) -> None:
        for sender in self.senders.values():
            sender.close()
        for platform in self.platforms:
            platform.close()


def drain(engine: Any, senders: Senders, timeout: float = 30) -> dict[str, int]:
    """Step the senders until nothing is pending, sending or in flight; the counts by state."""
    from chatops import outbound

    deadline = time.time() + timeout
    senders.poke()
    while time.time() < deadline:
        senders.step(0.05)
        counts = outbound.counts(engine)
        if not counts.get("pending") and not counts.get("sending") and senders.idle():
            return counts
    raise AssertionError(f"not drained: {outbound.counts(engine)}")


def events_handled(engine: Engine, slurm_id: int) -> list[str]:
    """The mail types of the MailProg events of one Slurm job the ingest has handled, sorted
    (an event is recorded once its thread notices are queued)."""
    with reading(engine) as conn:
        return sorted(conn.execute(select(notify_events.c.mail_type).where(
            notify_events.c.slurm_job_id == str(slurm_id))).scalars())
