"""A full disk under CHATOPS_HOME (a small tmpfs, filled by a job or by dd) does not kill
`chatops run`: it says so on /healthz and in the log, refuses new jobs with a clear message,
keeps the running job, and resumes by itself when space returns (issue 13, item 1)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from chatops.db import deliveries, jobs
from chatops.service import open_queue
from chatops.settings import load_settings
from tests.support.cli import Chatops
from tests.support.require import require
from tests.support.wait import wait_until
from tests.support.web import SECRET, hook_headers

pytestmark = pytest.mark.slow  # a tmpfs mounted, real processes

CONFIG = '''
admin_channel = "console:admins"
raw_config = {
    "disk": {
        "description": "jobs that fill a disk",
        "jobs": {
            "hold": {"run_args_template": 'while [ ! -e "$CHATOPS_WRITEABLE_DIR/release" ]; '
                                          'do sleep 0.05; done; echo released',
                     "report_stdout": True},
            "fill": {"run_args_template": 'dd if=/dev/zero of="$CHATOPS_WRITEABLE_DIR/filler" '
                                          'bs=64k 2>/dev/null; echo filled',
                     "report_stdout": True},
            "echo": {"run_args_template": "echo {words}", "report_stdout": True},
        },
        "github": [{"event": "push", "branches": ["main"], "job_type": "echo",
                    "args": {"words": "$sha"}}],
        "slack": [
            {"command": "hold", "help": "run until released", "action": "schedule_job",
             "job_type": "hold"},
            {"command": "fill", "help": "fill the disk", "action": "schedule_job",
             "job_type": "fill"},
            {"command": "echo [words]", "help": "echo", "action": "schedule_job",
             "job_type": "echo"},
        ],
    },
}
'''
REFUSED = ("The service cannot store new jobs right now: disk full. Nothing was changed; "
           "please try again later.")


@pytest.fixture
def small_home() -> Iterator[Path]:
    """CHATOPS_HOME on its own 8 MB tmpfs."""
    require(os.geteuid() == 0, "root (to mount a tmpfs)")
    path = Path(tempfile.mkdtemp(prefix="chatops-full-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(path)],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)
        path.rmdir()


@pytest.fixture
def chatops(small_home: Path, tmp_path: Path) -> Iterator[Chatops]:
    (tmp_path / "workspace" / "disk").mkdir(parents=True)
    config = tmp_path / "job_configs.py"
    config.write_text(CONFIG)
    run_dir = tempfile.mkdtemp(prefix="chatops-run-")  # off the tmpfs: the wake-up sockets
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATOPS_")}
    env.update(CHATOPS_HOME=str(small_home), CHATOPS_CONFIG=str(config),
               CHATOPS_WORKSPACE_DIR=str(tmp_path / "workspace"), CHATOPS_RUN_DIR=run_dir,
               CHATOPS_WEB_TOKEN="t" * 32, CHATOPS_KILL_GRACE_SECONDS="1",
               CHATOPS_POLL_INTERVAL="0.5", GITHUB_WEBHOOK_SECRET=SECRET)
    runner = Chatops(tmp_path, env)
    runner("db", "upgrade", check=True)
    yield runner
    runner.stop_all()
    shutil.rmtree(run_dir, ignore_errors=True)


def health(base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def job_states(chatops: Chatops) -> dict[int, str]:
    queue = open_queue(load_settings(chatops.env))
    try:
        with queue.engine.connect() as conn:
            return dict(conn.execute(select(jobs.c.id, jobs.c.state)).all())
    finally:
        queue.engine.dispose()


def admin_notices(chatops: Chatops) -> list[str]:
    queue = open_queue(load_settings(chatops.env))
    try:
        with queue.engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.payload).where(
                deliveries.c.platform == "console", deliveries.c.channel == "admins")).scalars()
            return [json.loads(payload)["text"] for payload in rows]
    finally:
        queue.engine.dispose()


def push(base: str) -> tuple[int, dict]:
    """The same GitHub delivery each time (a redelivery after the first)."""
    body = json.dumps({"ref": "refs/heads/main", "after": "c0ffee" * 5,
                       "repository": {"default_branch": "main"}}).encode()
    request = urllib.request.Request(f"{base}/github/disk/", data=body, method="POST",
                                     headers=hook_headers("push", body, "full-disk-1"))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def queued(chatops: Chatops, text: str) -> int:
    result = chatops.chat(text, "--no-wait")
    assert result.returncode == 0, result.stderr
    return int(re.search(r"\(job (\d+)\)", result.stderr).group(1))


@pytest.mark.parametrize("filler", ["job", "dd"])
def test_a_full_disk_pauses_the_service_and_it_resumes_by_itself(chatops, small_home, filler):
    run = chatops.start("run", "--port", "0")
    log = chatops.home / "run-0.log"
    base = wait_until(lambda: re.search(r"web: (http://127\.0\.0\.1:\d+)/", log.read_text()),
                      timeout=60, what="chatops run to listen").group(1)
    wait_until(lambda: health(base)[0] == 200, timeout=30, what="/healthz to say ok")
    hold = queued(chatops, "disk hold")
    wait_until(lambda: job_states(chatops)[hold] == "running", what="the held job to run")

    if filler == "job":
        fill = queued(chatops, "disk fill")
        wait_until(lambda: (small_home / "writeable" / "filler").exists(), what="dd to start")
    else:
        subprocess.run(["dd", "if=/dev/zero", f"of={small_home}/filler", "bs=64k"],
                       capture_output=True)
    status, body = wait_until(lambda: (lambda h: h[0] == 503 and h)(health(base)),
                              what="/healthz to say the disk is full")
    assert body["checks"]["database"] == "cannot write (disk full)"
    wait_until(lambda: f"chatops dispatcher on {socket.gethostname()} cannot write to the "
               "database: disk full" in log.read_text(), what="the dispatcher to log it")

    refused = chatops.chat("disk echo while full")
    assert (refused.returncode, refused.stdout.strip()) == (3, REFUSED)
    assert push(base) == (503, {"error": "The service cannot store that right now: disk "
                                         "full. Please try again later."})
    assert "Traceback" not in refused.stderr + log.read_text()
    assert run.poll() is None, "chatops run died"

    # Space comes back: the service resumes by itself.
    for filler_file in (small_home / "filler", small_home / "writeable" / "filler"):
        filler_file.unlink(missing_ok=True)
    wait_until(lambda: health(base)[0] == 200, what="/healthz to say ok again")
    wait_until(lambda: "chatops dispatcher can write to the database again" in log.read_text(),
               what="the dispatcher to resume")
    status, body = push(base)  # GitHub's redelivery is handled now
    assert (status, body["outcome"]) == (202, "scheduled")
    back = chatops.chat("disk echo back again", timeout=60)
    assert back.returncode == 0, back.stderr
    assert "back again" in back.stdout

    (small_home / "writeable" / "release").touch()
    wait_until(lambda: job_states(chatops)[hold] == "succeeded", what="the held job to end")
    if filler == "job":  # it ended while the disk was full: its end was kept until it could be
        assert job_states(chatops)[fill] == "succeeded"
    (notice,) = wait_until(lambda: [n for n in admin_notices(chatops) if "could not write" in n],
                           what="the admins' notice")
    assert re.fullmatch(rf"chatops dispatcher on {re.escape(socket.gethostname())} could not "
                        r"write to the database from .+ for .+ \(disk full: .+\); no new job "
                        r"was started meanwhile\. It writes again and has resumed by itself\.",
                        notice), notice
    assert run.poll() is None
