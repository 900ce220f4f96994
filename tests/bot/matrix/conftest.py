"""The Matrix test stack: a real Synapse (scripts/test-synapse.sh), fresh users per test,
matrix-nio clients for them, and a real service with the Dispatcher and the Sender."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import tempfile
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, AsyncClientConfig, LoginResponse

from bot.asyncloop import LoopThread
from bot.matrix import MatrixPlatform
from bot.sender import Sender
from chatops import migrate
from chatops.commands import CommandHandler
from chatops.service import Service, open_service
from chatops.settings import load_settings
from dispatcher.loop import Dispatcher
from tests.support.require import require
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[3]
PASSWORD = "chatops-test-password"

CONFIG = '''
raw_config = {
    "example": {
        "description": "Example jobs",
        "jobs": {
            "hello": {"run_args_template": "echo Hello {name}", "report_stdout": True},
            "code": {"run_args_template": "python3 gen.py {size}", "report_stdout": True,
                     "report_format": "code"},
            "file": {"run_args_template": "python3 gen.py {size}", "report_format": "file"},
            "quiet": {"run_args_template": "true", "report_success": False},
            "blocks": {"run_args_template": "python3 blocks.py", "report_stdout": True,
                       "report_format": "blocks"},
        },
        "slack": [
            {"command": "say hello [name]", "help": "say hello", "action": "schedule_job",
             "job_type": "hello"},
            {"command": "code [size]", "help": "code of a size", "action": "schedule_job",
             "job_type": "code"},
            {"command": "file [size]", "help": "a file of a size", "action": "schedule_job",
             "job_type": "file"},
            {"command": "quiet", "help": "quiet", "action": "schedule_job", "job_type": "quiet"},
            {"command": "blocks", "help": "blocks", "action": "schedule_job",
             "job_type": "blocks"},
        ],
    },
}
'''

GEN = '''
import sys
size = int(sys.argv[1])
line = 0
while size > 0:
    width = min(100, size)
    sys.stdout.write((f"{line:04d}" + "x" * 95)[:width - 1] + "\\n")
    size -= width
    line += 1
'''

BLOCKS = """
import json
print(json.dumps([
    {"type": "header", "text": {"type": "plain_text", "text": "Disk <usage> & more"}},
    {"type": "divider"},
    {"type": "section", "text": {"type": "mrkdwn", "text": "All `fine`"}},
]))
"""






class Synapse:
    """The running homeserver: its URL, and registration with the shared secret."""

    def __init__(self, env: dict[str, str]):
        self.url = env["MATRIX_TEST_HOMESERVER_URL"]
        self.secret = env["MATRIX_TEST_SHARED_SECRET"]

    def api(self, method: str, path: str, body: dict | None = None,
            token: str | None = None) -> dict:
        request = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {token}"} if token else {})})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def register(self, prefix: str, admin: bool = False) -> str:
        """A new user ``@<prefix>-<random>:localhost``; its user id."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        nonce = self.api("GET", "/_synapse/admin/v1/register")["nonce"]
        mac = hmac.new(self.secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), name.encode(), PASSWORD.encode(),
                                 b"admin" if admin else b"notadmin"]))
        answer = self.api("POST", "/_synapse/admin/v1/register", {
            "nonce": nonce, "username": name, "password": PASSWORD, "admin": admin,
            "mac": mac.hexdigest()})
        return answer["user_id"]


def synapse_env() -> dict[str, str] | None:
    result = subprocess.run(["bash", str(REPO / "scripts/test-synapse.sh"), "env"],
                            capture_output=True, text=True, timeout=30)
    if result.returncode != 0 or not result.stdout.strip():
        return None
    lines = Path(result.stdout.strip()).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


@pytest.fixture(scope="session")
def synapse() -> Synapse:
    env = synapse_env()
    if env is None:
        require(False, "Synapse", "scripts/test-synapse.sh up")
    return Synapse(env)


class User:
    """A person (or the bot, seen from outside) with a matrix-nio client, synchronously."""

    def __init__(self, synapse: Synapse, user_id: str):
        self.user_id = user_id
        self.loop = LoopThread(f"test-{user_id}")
        self.client = AsyncClient(synapse.url, user_id,
                                  config=AsyncClientConfig(store_sync_tokens=False))
        response = self.run(self.client.login(PASSWORD))
        assert isinstance(response, LoginResponse), response
        self.token = response.access_token

    def run(self, coro: Any) -> Any:
        return self.loop.run(coro, timeout=60)

    def events(self, room_id: str) -> list[dict]:
        """The room's message events (m.room.message, m.reaction), oldest first, as JSON."""
        response = self.run(self.client.room_messages(room_id, limit=100))
        return [e.source for e in reversed(response.chunk)
                if e.source.get("type") in ("m.room.message", "m.reaction")]

    def messages_from(self, room_id: str, sender: str, count: int,
                      timeout: float = 30) -> list[dict]:
        """The contents of ``sender``'s messages in the room, after at least ``count``."""
        def got() -> list[dict] | None:
            found = [e["content"] for e in self.events(room_id)
                     if e["sender"] == sender and e["type"] == "m.room.message"]
            return found if len(found) >= count else None
        return wait_until(got, timeout, f"{count} messages from {sender}")

    def close(self) -> None:
        self.run(self.client.close())
        self.loop.close()


@pytest.fixture
def users(synapse: Synapse) -> Iterator[Callable[..., User]]:
    made: list[User] = []

    def make(prefix: str, admin: bool = False) -> User:
        user = User(synapse, synapse.register(prefix, admin))
        made.append(user)
        return user

    yield make
    for user in made:
        user.close()


def make_service(tmp: Path, env: dict[str, str], extra_config: str = "") -> Service:
    """A migrated service on a temporary database with the test job config (and
    ``extra_config``, Python appended to it)."""
    workspace = tmp / "workspace"
    (workspace / "example").mkdir(parents=True, exist_ok=True)
    (workspace / "example" / "gen.py").write_text(GEN)
    (workspace / "example" / "blocks.py").write_text(BLOCKS)
    (tmp / "job_configs.py").write_text(CONFIG + extra_config)
    settings = load_settings({
        "CHATOPS_HOME": str(tmp / "home"), "CHATOPS_CONFIG": str(tmp / "job_configs.py"),
        "CHATOPS_WORKSPACE_DIR": str(workspace), "CHATOPS_POLL_INTERVAL": "0.2",
        "CHATOPS_DELIVERY_ATTEMPTS": "3", "PATH": "/usr/bin:/bin",
        "CHATOPS_RUN_DIR": tempfile.mkdtemp(prefix="chatops-run-"), **env})
    service = open_service(settings, need_schema=False)
    migrate.upgrade(service.queue.engine)
    return service


class Stack:
    """A service with Matrix settings, the MatrixPlatform serving, Dispatcher and outbox."""

    def __init__(self, tmp: Path, env: dict[str, str], extra_config: str = ""):
        self.service = make_service(tmp, env, extra_config)
        settings = self.service.settings
        self.engine = self.service.queue.engine
        self.platform = MatrixPlatform.create(self.service)
        self.stop = threading.Event()
        self.dispatcher = Dispatcher(settings, self.service.config, self.service.queue)
        handler = CommandHandler(settings, self.service.config, self.service.queue)
        worker = Sender.for_service(self.service, self.platform)
        self.threads = [
            threading.Thread(target=self.platform.serve, args=(handler, self.stop), daemon=True),
            threading.Thread(target=self.dispatcher.run, daemon=True),
            threading.Thread(target=worker.run, args=(self.stop,), daemon=True)]
        for thread in self.threads:
            thread.start()

    def joined_rooms(self) -> list[str]:
        return self.platform.loop.run(self.platform.client.joined_rooms()).rooms

    def close(self) -> None:
        self.stop.set()
        self.dispatcher.stop()
        for thread in self.threads:
            thread.join(15)
        self.platform.close()


@pytest.fixture
def stack(synapse: Synapse, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    made: list[Stack] = []

    def make(extra_config: str = "", **env: str) -> Stack:
        made.append(Stack(tmp_path, {"MATRIX_HOMESERVER_URL": synapse.url, **env}, extra_config))
        return made[-1]

    yield make
    for one in made:
        one.close()
