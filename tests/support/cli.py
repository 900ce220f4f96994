"""The real ``chatops`` command, run as processes against one private CHATOPS_HOME."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHATOPS = str(Path(sys.executable).parent / "chatops")
TEST_CONFIG = Path(__file__).resolve().parent / "spine_config.py"
TEST_WORKSPACE = Path(__file__).resolve().parents[1] / "workspace"
PG_ADMIN_URL = os.environ.get("CHATOPS_TEST_PG_URL", "postgresql://root@127.0.0.1:5432/test")


def spine_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATOPS_")}
    env.update(CHATOPS_HOME=str(home), CHATOPS_CONFIG=str(TEST_CONFIG),
               CHATOPS_WORKSPACE_DIR=str(TEST_WORKSPACE), CHATOPS_KILL_GRACE_SECONDS="1",
               CHATOPS_LOG_LEVEL="INFO")
    env.update(extra)
    return env


class Chatops:
    """Runs the real `chatops` command against one CHATOPS_HOME."""

    def __init__(self, home: Path, env: dict[str, str]):
        self.home = home
        self.env = env
        self.processes: list[subprocess.Popen] = []

    def __call__(self, *args: str, timeout: float = 60, check: bool = False
                 ) -> subprocess.CompletedProcess:
        result = subprocess.run([CHATOPS, *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"chatops {args} exited {result.returncode}:\n{result.stderr}")
        return result

    def chat(self, text: str, *more: str, user: str = "alice", timeout: float = 60
             ) -> subprocess.CompletedProcess:
        return self("chat", text, "--user", user, *more, timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen:
        log = open(self.home / f"{args[0]}-{len(self.processes)}.log", "wb")
        process = subprocess.Popen([CHATOPS, *args], env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def start_dispatcher(self) -> subprocess.Popen:
        process = self.start("dispatcher")
        deadline = time.time() + 30
        while time.time() < deadline:  # ready once it has registered its heartbeat
            if "started" in self.log_text():
                return process
            time.sleep(0.02)
        raise AssertionError(f"dispatcher did not start:\n{self.log_text()}")

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.home.glob("*.log")))

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
