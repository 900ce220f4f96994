"""A long-lived shell on the pooled connection for short commands (squeue, sacct, scancel, kill).

Each exec channel costs ≈50 ms of sshd session set-up (PAM, the login shell) before the command
even starts; a shell kept open on one channel runs the next command in a few milliseconds. The
protocol is framed on stdout alone: the command's stdout passes through, its stderr is captured
by the shell, and a line with a random marker carries the exit status and then the stderr text.

One command at a time per shell; the connection falls back to an exec channel when the shell is
busy or broken, so a slow command never holds up the others.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable

import paramiko

from chatops.slurm.client import CommandResult

MAX_OUTPUT = 64 * 1024 * 1024


class ShellBroken(Exception):
    """The shell channel closed or misbehaved; it is discarded and reopened on next use."""


class CommandShell:
    def __init__(self, open_channel: Callable[[], paramiko.Channel]):
        self._open_channel = open_channel  # () -> a new paramiko Channel on the pooled transport
        self._channel: paramiko.Channel | None = None
        self._lock = threading.Lock()

    def try_run(self, command: str, timeout: float) -> CommandResult | None:
        """Run ``command``; None when the shell is busy (use an exec channel instead)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._channel is None or self._channel.closed:
                try:
                    self._start(timeout)
                except (ShellBroken, paramiko.SSHException, EOFError, OSError):
                    self.close()
                    return None  # nothing was sent: an exec channel may run it instead
            return self._run(command, timeout)
        except (ShellBroken, paramiko.SSHException, EOFError, OSError):  # (and TimeoutError)
            self.close()  # the command may have run: the caller must not simply run it again
            raise
        finally:
            self._lock.release()

    def _start(self, timeout: float) -> None:
        channel = self._open_channel()
        channel.exec_command("exec bash -s")  # no rc files: the same environment as `bash -c`
        channel.sendall(b"exec 3>&1\n")
        self._channel = channel
        # What the account's shell start-up printed (a greeting in a site .bashrc) comes before
        # this first answer and goes with it, so it never reaches a command's output.
        self._run(":", timeout)

    def _run(self, command: str, timeout: float) -> CommandResult:
        channel = self._channel
        mark = f"chatops-{uuid.uuid4().hex}"
        channel.sendall(
            f"__e=$( {{ {command}\n}} 2>&1 1>&3 </dev/null ); __rc=$?\n"
            f"printf '\\n{mark} %d\\n%s\\n{mark}.\\n' \"$__rc\" \"$__e\"\n".encode())
        end = re.compile(rf"\n{mark} (\d+)\n(.*)\n{mark}\.\n".encode(), re.S)
        buffer = b""
        deadline = time.monotonic() + timeout
        while (match := end.search(buffer)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{command.split()[0]} did not finish within {timeout:g}s")
            channel.settimeout(remaining)
            try:
                data = channel.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise ShellBroken("the shell channel closed")
            buffer += data
            if len(buffer) > MAX_OUTPUT:
                raise ShellBroken("output too large for the command shell")
        while channel.recv_stderr_ready():  # the shell's own complaints: keep the window open
            channel.recv_stderr(65536)
        return CommandResult(int(match.group(1)), buffer[:match.start()].decode("utf-8", "replace"),
                             match.group(2).decode("utf-8", "replace"))

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
