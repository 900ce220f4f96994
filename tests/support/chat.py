"""A real service for the chat platforms' tests (and bench/chat_platforms.py): a temporary
database, a job config whose jobs print outputs of chosen sizes, and the real Dispatcher and
the Sender running in threads."""

from __future__ import annotations

import tempfile
import textwrap
import threading
from pathlib import Path

from bot.sender import Sender
from chatops import migrate
from chatops.platform import Platform
from chatops.service import Service, open_service
from chatops.settings import load_settings
from dispatcher.loop import Dispatcher

CONFIG = '''
raw_config = {
    "example": {
        "description": "Example jobs",
        "jobs": {
            "hello": {"run_args_template": "echo Hello {name}", "report_stdout": True},
            "text": {"run_args_template": "python3 gen.py {size}", "report_stdout": True},
            "code": {"run_args_template": "python3 gen.py {size}", "report_stdout": True,
                     "report_format": "code"},
            "file": {"run_args_template": "python3 gen.py {size}", "report_format": "file"},
            "blocks": {"run_args_template": "python3 blocks.py", "report_stdout": True,
                       "report_format": "blocks"},
            "fail": {"run_args_template": "echo oops >&2; exit 3"},
            "quiet": {"run_args_template": "true", "report_success": False},
            "tick": {"run_args_template": "for i in $(seq 20); do echo tick $i; sleep 1; done",
                     "report_stdout": True, "timeout": 60},
        },
        "slack": [
            {"command": "say hello [name]", "help": "say hello", "action": "schedule_job",
             "job_type": "hello"},
            {"command": "text [size]", "help": "text of a size", "action": "schedule_job",
             "job_type": "text"},
            {"command": "code [size]", "help": "code of a size", "action": "schedule_job",
             "job_type": "code"},
            {"command": "file [size]", "help": "a file of a size", "action": "schedule_job",
             "job_type": "file"},
            {"command": "blocks", "help": "blocks", "action": "schedule_job",
             "job_type": "blocks"},
            {"command": "fail", "help": "fails", "action": "schedule_job", "job_type": "fail"},
            {"command": "quiet", "help": "quiet", "action": "schedule_job",
             "job_type": "quiet"},
        ],
    },
    "secret": {
        "description": "Restricted jobs",
        "restricted": True,
        "allowed_users": ["telegram:42", "discord:4242"],
        "jobs": {"hello": {"run_args_template": "echo secret hello", "report_stdout": True}},
        "slack": [{"command": "hello", "help": "say hello", "action": "schedule_job",
                   "job_type": "hello"}],
    },
}
'''

# Prints SIZE characters in lines of 100 (99 characters and a newline), the last one shorter.
GEN = '''
import sys
size = int(sys.argv[1])
line = 0
while size > 0:
    width = min(100, size)
    body = (f"{line:04d}" + "x" * 95)[:width - 1]
    sys.stdout.write(body + "\\n")
    size -= width
    line += 1
'''

BLOCKS = '''
import json
print(json.dumps([
    {"type": "header", "text": {"type": "plain_text", "text": "Disk <usage> & more"}},
    {"type": "divider"},
    {"type": "section", "text": {"type": "mrkdwn", "text": "All `fine`"}},
]))
'''


def chat_service(tmp_path: Path, **env: str) -> Service:
    workspace = tmp_path / "workspace"
    (workspace / "example").mkdir(parents=True, exist_ok=True)
    (workspace / "secret").mkdir(exist_ok=True)
    (workspace / "example" / "gen.py").write_text(textwrap.dedent(GEN))
    (workspace / "example" / "blocks.py").write_text(textwrap.dedent(BLOCKS))
    config = tmp_path / "job_configs.py"
    config.write_text(CONFIG)
    settings = load_settings({
        "CHATOPS_HOME": str(tmp_path / "home"), "CHATOPS_CONFIG": str(config),
        "CHATOPS_WORKSPACE_DIR": str(workspace), "CHATOPS_POLL_INTERVAL": "0.2",
        "CHATOPS_DELIVERY_ATTEMPTS": "3", "PATH": "/usr/bin:/bin",
        # Unix socket paths are limited to 108 bytes: keep the wake-up sockets short.
        "CHATOPS_RUN_DIR": tempfile.mkdtemp(prefix="chatops-run-"), **env})
    service = open_service(settings, need_schema=False)
    migrate.upgrade(service.queue.engine)
    return service


class Running:
    """The real Dispatcher and the platform's Sender, in threads."""

    def __init__(self, service: Service, platform: Platform) -> None:
        self.stop = threading.Event()
        self.dispatcher = Dispatcher(service.settings, service.config, service.queue)
        self.worker = Sender.for_service(service, platform)
        self.threads = [threading.Thread(target=self.dispatcher.run, daemon=True),
                        threading.Thread(target=self.worker.run, args=(self.stop,), daemon=True)]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        self.dispatcher.stop()
        for thread in self.threads:
            thread.join(10)
