"""A real WebDAV server for the tests: wsgidav (on cheroot) on 127.0.0.1, one account with a
password, serving a private folder; started as a process of its own, stopped by its pid."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from tests.support.require import require
from tests.support.wait import wait_until

USER = "chatops"


class WebDAV:
    def __init__(self, folder: Path):
        try:
            import wsgidav  # noqa: F401  (the test extra: pyproject.toml)
        except ImportError:
            require(False, "wsgidav", "make venv")
        self.root = folder / "dav"
        self.root.mkdir(parents=True)
        self.password = "dav-" + uuid.uuid4().hex
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = folder / "wsgidav.json"
        config.write_text(json.dumps({
            "host": "127.0.0.1", "port": self.port, "server": "cheroot", "verbose": 1,
            "provider_mapping": {"/": str(self.root)},
            "http_authenticator": {"domain_controller": None, "accept_basic": True,
                                   "accept_digest": False, "default_to_digest": False},
            "simple_dc": {"user_mapping": {"*": {USER: {"password": self.password}}}},
            "dir_browser": {"enable": False}}))
        self.log = folder / "wsgidav.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).with_name("wsgidav")), "--config", str(config)],
                stdout=out, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(self._up, 20, f"wsgidav on port {self.port} (log {self.log})")

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"wsgidav exited: {self.log.read_text()[-2000:]}")
        try:
            return httpx.request("PROPFIND", self.url + "/", auth=(USER, self.password),
                                 headers={"Depth": "0"}).status_code == 207
        except httpx.TransportError:
            return False

    def with_account(self, path: str = "/results") -> str:
        """The folder's URL as CHATOPS_RESULTS_WEBDAV_URL holds it: the account in it."""
        return f"http://{USER}:{self.password}@127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, auth=(USER, self.password))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
