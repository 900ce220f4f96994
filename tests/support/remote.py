"""Drive the real Dispatcher and the console platform in-process, against the test cluster.

The cluster comes from ``scripts/test-cluster.sh up`` (its env file gives the SSH details for
user alice). Without it the tests skip — except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

from chatops import migrate
from chatops.commands import CommandHandler, Incoming, Response
from chatops.config_loader import build_config
from chatops.db import make_engine
from chatops.events import Requester
from chatops.joblogs import job_logs
from chatops.plain_text import render_delivery
from chatops.platform import take_waiting
from chatops.queue import Queue
from chatops.settings import load_settings
from dispatcher.loop import Dispatcher
from tests.support.require import require
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("CHATOPS_TEST_CLUSTER_DIR", "/tmp/chatops-test-cluster"))


# Service secrets a harness holds, and a job command printing the names of the variables it
# sees that could be the service's (names: a leaked value would be redacted in its report).
SERVICE_SECRETS = {"GITHUB_WEBHOOK_SECRET": "gh-" + uuid.uuid4().hex,
                   "CHATOPS_EVENTS_TOKEN": "ev-" + uuid.uuid4().hex}
NAMES = "env | cut -d= -f1 | grep -E '^(CHATOPS_|GITHUB_|SLACK_|SSH_AUTH_SOCK)' | sort"

def cluster_env() -> dict[str, str]:
    """The test cluster's connection details, or skip (fail in CI) when it is not up."""
    path = STATE_DIR / "cluster.env"
    up = path.is_file() and subprocess.run(
        ["bash", str(REPO / "scripts/test-cluster.sh"), "status"], capture_output=True,
        text=True).stdout.count("running") >= 5
    require(up, "the test cluster", "scripts/test-cluster.sh up")
    env = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            env[key.strip()] = value.strip()
    return env


def cluster_settings(env: dict[str, str], **extra: Any) -> dict[str, Any]:
    """A ``clusters`` entry for the test cluster as alice."""
    return {"host": env["CHATOPS_TEST_SSH_HOST"], "port": int(env["CHATOPS_TEST_SSH_PORT"]),
            "user": env["CHATOPS_TEST_SSH_USER"], "key_file": env["CHATOPS_TEST_SSH_KEY"],
            "known_hosts": env["CHATOPS_TEST_SSH_KNOWN_HOSTS"], "connect_timeout": 5,
            "command_timeout": 30, "max_sessions": 20, **extra}




class Harness:
    """A private CHATOPS_HOME, the real Dispatcher in a thread, and console sessions."""

    def __init__(self, home: Path, raw_config: dict, clusters: dict,
                 monitors: dict | None = None, telemetry: dict | None = None, *,
                 runners: dict | None = None, calculations: dict | None = None,
                 admins: list[str] | None = None, **environ: str):
        home.mkdir(parents=True, exist_ok=True)
        env = {"CHATOPS_HOME": str(home), "CHATOPS_KILL_GRACE_SECONDS": "1",
               "CHATOPS_WORKSPACE_DIR": str(home / "workspace"),
               "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **environ}
        self.settings = load_settings(env)
        engine = make_engine(self.settings.database_url)
        migrate.upgrade(engine)
        self.queue = Queue(engine)
        self.config = build_config(raw_config, clusters, monitors=monitors, telemetry=telemetry,
                                   runners=runners, calculations=calculations, admins=admins)
        self.dispatcher = Dispatcher(self.settings, self.config, self.queue)
        self.handler = CommandHandler(self.settings, self.config, self.queue)
        self.thread = threading.Thread(target=self.dispatcher.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.queue.dispatchers(), 10, "the dispatcher to start")

    def chat(self, text: str, channel: str | None = None, user: str = "alice",
             attachment: Any = None) -> tuple[Response, str]:
        channel = channel or f"t-{uuid.uuid4().hex[:10]}"
        who = Requester(platform="console", user=user, channel=channel, user_name=user,
                        is_direct=True, is_guest=False)
        return self.handler.handle(Incoming(who, text, attachment)), channel

    def replies(self, channel: str, count: int = 1, timeout: float = 60) -> list[str]:
        """The next ``count`` messages delivered to a console session, as the user sees them."""
        got: list[str] = []

        def take() -> bool:
            got.extend(render_delivery(d) for d in take_waiting(self.queue, "console", channel))
            return len(got) >= count

        wait_until(take, timeout, f"{count} replies on {channel} (got {got})")
        return got

    def replies_until(self, channel: str, start: str, timeout: float = 60) -> list[str]:
        """The messages a console session reads up to the one that starts with ``start``."""
        got: list[str] = []

        def reached() -> bool:
            got.extend(render_delivery(d) for d in take_waiting(self.queue, "console", channel))
            return bool(got) and got[-1].startswith(start)

        wait_until(reached, timeout, f"a message starting {start!r} on {channel} (got {got})")
        return got

    def run(self, text: str, timeout: float = 60) -> tuple[int, str]:
        """Ask, and wait for the report: (job id, report text)."""
        response, channel = self.chat(text)
        assert response.job_id is not None, [r.text for r in response.replies]
        return response.job_id, self.replies(channel, 1, timeout)[0]

    def log(self, job_id: int, stream: str = "stdout") -> str:
        """What a job wrote to one stream, from its log file ("" when it wrote nothing)."""
        path = job_logs(self.settings.logs_dir, self.queue.get(job_id)).path(stream)
        return path.read_text() if path.exists() else ""

    @property
    def remote(self) -> Any:
        return self.dispatcher.remote

    def stop(self) -> None:
        self.dispatcher.stop()
        self.thread.join(30)


def slurm_update(node: str, *words: str) -> None:
    """scontrol update, waiting out a slurmctld that someone else's test restarts (a resume of
    a node someone else resumed already is refused, and is done)."""
    def done() -> bool:
        result = subprocess.run(["scontrol", "update", f"nodename={node}", *words],
                                capture_output=True, text=True, timeout=30)
        return result.returncode == 0 or "state=resume" in words and "Invalid node state" \
            in result.stderr
    wait_until(done, 60, f"scontrol update nodename={node} {' '.join(words)}")
