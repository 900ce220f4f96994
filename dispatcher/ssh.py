"""One pooled SSH connection per cluster (paramiko), shared by remote jobs and Slurm commands.

One transport per cluster carries many channels at once (up to the cluster's ``max_sessions``),
with keepalives; when it drops, the next use reconnects, and after a failed connect further
attempts wait with a growing backoff so a dead cluster costs its jobs nothing but a quick,
clear failure. Host keys are checked strictly against the cluster's ``known_hosts``
(``RejectPolicy``: unknown or changed keys are refused). Connecting and reading happen in each
job's thread, never in the dispatcher loop, so a down cluster never delays other clusters or
local jobs. Jobs themselves run through dispatcher/ssh_jobs.py.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import threading
import time
from collections.abc import Iterator, Mapping
from typing import BinaryIO

import paramiko

from chatops.cluster_config import ClusterSpec
from chatops.slurm.client import CommandResult
from dispatcher.ssh_shell import CommandShell, ShellBroken

log = logging.getLogger("chatops.ssh")

MAX_BACKOFF = 60.0
CHANNEL_RETRY = (0.1, 0.3, 1.0, 2.0)  # pauses when the server refuses a channel
# Reads a job's `env` from stdin: NUL-terminated NAME=value records, an empty one last (values
# never appear in a command line that `ps` on the login node shows).
READ_ENV = 'while IFS= read -r -d "" kv && [ -n "$kv" ]; do export "$kv"; done; '


# Printed to stdout and stderr just before a command runs: what comes before it is the noise of
# the account's shell start-up (a site .bashrc that greets or loads modules), not the command's.
START_MARK = b"chatops-start"
PRINT_START = 'printf "%s\\n" {0}; printf "%s\\n" {0} >&2; '.format(START_MARK.decode())


class AfterMark:
    """A stream with everything up to the first START_MARK line dropped."""

    KEEP = 64 * 1024  # noise kept while waiting: shown if the mark never comes

    def __init__(self) -> None:
        self.seen = False
        self.head = b""

    def feed(self, data: bytes) -> bytes:
        if self.seen:
            return data
        self.head += data
        at = self.head.find(START_MARK + b"\n")
        if at < 0:
            self.head = self.head[-self.KEEP:]
            return b""
        self.seen, rest, self.head = True, self.head[at + len(START_MARK) + 1:], b""
        return rest

    def end(self) -> bytes:
        """What came without the mark (the start-up itself failed): shown, not lost."""
        return b"" if self.seen else self.head


PREPARED = "chatops-prepared"  # run_after: the first command succeeded


class PrepareFailed(Exception):
    """``run_after``'s first command failed (its error output); the second did not run."""


def after_start(data: bytes) -> bytes:
    stream = AfterMark()
    return stream.feed(data) or stream.end()


def env_records(env: Mapping[str, str]) -> bytes:
    """``env`` as READ_ENV reads it: NUL-terminated NAME=value records, then an empty one."""
    return b"".join(f"{name}={value}".encode() + b"\0" for name, value in env.items()) + b"\0"


class ClusterUnreachable(Exception):
    """The cluster cannot be reached now (refused, timed out, bad host key, auth failed)."""


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, paramiko.BadHostKeyException):
        return (f"the host key of {exc.hostname} ({exc.key.get_name()} "
                f"{exc.key.fingerprint}) does not match known_hosts: refusing to connect")
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) and exc.errors:
        return describe_error(next(iter(exc.errors.values())))
    if isinstance(exc, paramiko.AuthenticationException):
        return f"authentication failed: {exc}"
    if isinstance(exc, TimeoutError):
        return str(exc) or "connection timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


class ClusterConnection:
    """The pooled SSH connection to one cluster."""

    def __init__(self, spec: ClusterSpec, environ: Mapping[str, str], pool: SSHPool):
        self.spec = spec
        self.environ = environ
        self.pool = pool
        self.connects = 0  # how many connections were opened (tests and benchmarks read it)
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()
        self._failures = 0
        self._retry_at = 0.0
        self._last_error = ""
        # One channel of the server's MaxSessions stays with the command shell.
        self._sessions = threading.BoundedSemaphore(max(1, spec.max_sessions - 1))
        self._shell = CommandShell(self._open_channel) if spec.max_sessions > 1 else None

    def transport(self) -> paramiko.Transport:
        """The open transport, connecting (or reconnecting) first when needed."""
        with self._lock:
            client = self._client
            current = client.get_transport() if client else None
            if current is not None and current.is_active():
                return current
            if client is not None:
                client.close()
                self._client = None
            now = time.monotonic()
            if self._failures and now < self._retry_at:
                raise ClusterUnreachable(f"{self._last_error} (next attempt in "
                                         f"{self._retry_at - now:.0f} s)")
            try:
                self._client = self._connect()
            except Exception as exc:
                self._failures += 1
                self._retry_at = now + min(MAX_BACKOFF, 2.0 ** (self._failures - 1))
                self._last_error = describe_error(exc)
                log.warning("cluster %s unreachable: %s", self.spec.name, self._last_error)
                raise ClusterUnreachable(self._last_error) from exc
            self._failures = 0
            self.connects += 1
            return self._client.get_transport()

    def _connect(self) -> paramiko.SSHClient:
        spec = self.spec
        client = paramiko.SSHClient()
        client.load_host_keys(spec.known_hosts)  # only the cluster's own file, never ~/.ssh
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        sock = None
        if spec.jump_host:
            jump = self.pool.connection(spec.jump_host).transport()
            sock = jump.open_channel("direct-tcpip", (spec.host, spec.port), ("127.0.0.1", 0),
                                     timeout=spec.connect_timeout)
        passphrase = self.environ.get(spec.key_passphrase_env or "") or None
        password = self.environ.get(spec.password_env or "") or None
        try:
            client.connect(
                spec.host, port=spec.port, username=spec.user, key_filename=spec.key_file,
                passphrase=passphrase, password=password, allow_agent=spec.agent,
                look_for_keys=False,
                timeout=spec.connect_timeout, banner_timeout=spec.connect_timeout,
                auth_timeout=spec.connect_timeout, channel_timeout=spec.connect_timeout,
                sock=sock,
            )
        except paramiko.SSHException as exc:
            client.close()
            if "banner" in str(exc) or str(exc) == "No existing session":
                raise TimeoutError(f"no SSH handshake from {spec.host}:{spec.port} within "
                                   f"{spec.connect_timeout:g} s") from exc
            raise
        except BaseException:
            client.close()
            raise
        if spec.keepalive:
            client.get_transport().set_keepalive(spec.keepalive)
        log.info("cluster %s: connected to %s@%s:%s", spec.name, spec.user, spec.host, spec.port)
        return client

    def drop(self, transport: paramiko.Transport | None = None) -> None:
        """Close the connection (if it is still ``transport``); the next use reconnects."""
        with self._lock:
            if self._client and (transport is None or self._client.get_transport() is transport):
                self._client.close()
                self._client = None

    def _open_channel(self) -> paramiko.Channel:
        """A new channel on the pooled transport; one retry on a fresh connection if stale.

        A server that refuses a channel (its MaxSessions is full: closed channels linger there
        a moment) is asked again shortly; only a dead transport is replaced.
        """
        reconnected, refusals = False, 0
        while True:
            transport = self.transport()
            try:
                return transport.open_session(timeout=self.spec.connect_timeout)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                if transport.is_active():  # refused (ChannelException, or paramiko's bare
                    refusals += 1          # "Unable to open channel"): ask again shortly
                    if refusals > len(CHANNEL_RETRY):
                        raise ClusterUnreachable(f"the server refused a channel: {exc}") from exc
                    time.sleep(CHANNEL_RETRY[refusals - 1])
                    continue
                if reconnected:
                    raise ClusterUnreachable(f"cannot open a channel: {exc}") from exc
                self.drop(transport)
                reconnected = True

    @contextlib.contextmanager
    def session(self) -> Iterator[paramiko.Channel]:
        """A new exec channel, within the cluster's ``max_sessions``."""
        self._sessions.acquire()
        try:
            channel = self._open_channel()
            try:
                yield channel
            finally:
                channel.close()
        finally:
            self._sessions.release()

    def exec(self, command: str, timeout: float | None = None,
             stdin: bytes | BinaryIO = b"") -> CommandResult:
        """Run one short command and collect its output; TimeoutError when it overruns.

        ``stdin`` (bytes, or a file streamed in 1 MiB pieces) is the command's input."""
        status, stdout, stderr = self.exec_bytes(command, timeout, stdin)
        return CommandResult(status, stdout.decode("utf-8", "replace"),
                             stderr.decode("utf-8", "replace"))

    def exec_bytes(self, command: str, timeout: float | None = None,
                   stdin: bytes | BinaryIO = b"") -> tuple[int, bytes, bytes]:
        """``exec``, with the output as bytes (a file fetched with ``cat``)."""
        timeout = timeout or self.spec.command_timeout
        with self.session() as channel:
            channel.settimeout(timeout)
            channel.exec_command(PRINT_START + command)
            if isinstance(stdin, bytes):
                channel.sendall(stdin)
            else:
                while piece := stdin.read(1 << 20):
                    channel.sendall(piece)
            channel.shutdown_write()
            try:
                stdout = channel.makefile("rb").read()
                stderr = channel.makefile_stderr("rb").read()
            except TimeoutError as exc:
                raise TimeoutError(f"{command.split()[0]} did not finish within "
                                   f"{timeout:g}s") from exc
            if not channel.status_event.wait(timeout):
                raise TimeoutError(f"no exit status within {timeout:g}s")
            return channel.exit_status, after_start(stdout), after_start(stderr)

    def run(self, argv: list[str], timeout: float, env: Mapping[str, str] | None = None
            ) -> CommandResult:
        """The Slurm client's runner: ``argv`` quoted word by word, run on the login node.

        With ``env``, on an exec channel whose stdin carries the variables (see READ_ENV).
        """
        command = shlex.join(argv)
        if env:
            in_bash = shlex.quote(READ_ENV + "exec " + command)  # whatever the login shell
            return self.run_line(f"exec bash -c {in_bash}", timeout, env_records(env))
        return self.run_line(command, timeout)

    def run_line(self, command: str, timeout: float, stdin: bytes | None = None
                 ) -> CommandResult:
        """A command line whose words the caller quoted; losing the cluster is ConnectionError.

        Through the command shell when it is free (a few ms), else on a new exec channel (always
        with ``stdin``). A command the shell lost midway is never re-run here (it may have been
        an sbatch).
        """
        try:
            if stdin is not None:
                return self.exec(command, timeout, stdin)
            result = self._shell.try_run(command, timeout) if self._shell else None
            return result if result is not None else self.exec(command, timeout)
        except ClusterUnreachable as exc:
            raise ConnectionError(f"cluster {self.spec.name} unreachable: {exc}") from exc
        except TimeoutError:
            raise
        except (ShellBroken, paramiko.SSHException, EOFError, OSError) as exc:
            raise ConnectionError(f"lost the connection to cluster {self.spec.name}: "
                                  f"{describe_error(exc)}") from exc

    def run_after(self, prepare: str, data: bytes, then: str, timeout: float
                  ) -> CommandResult:
        """``prepare`` (a command line reading ``data`` on its stdin), then, only if it
        succeeded, the command line ``then``: on one exec channel, a round trip less than two
        commands (a calculation's staging and its sbatch). ``PrepareFailed`` (with its error
        output) when ``prepare`` failed, else as ``run_line``."""
        command = f"{prepare} && echo {PREPARED} && exec {then}"
        result = self.run_line(command, timeout, data)
        first, _, rest = result.stdout.partition("\n")
        if first != PREPARED:
            raise PrepareFailed(result.stderr.strip() or f"exit status {result.returncode}")
        return CommandResult(result.returncode, rest, result.stderr)

    def close(self) -> None:
        if self._shell:
            self._shell.close()
        self.drop()


class SSHPool:
    """One ClusterConnection per configured cluster, created on first use."""

    def __init__(self, clusters: Mapping[str, ClusterSpec], environ: Mapping[str, str]):
        self.clusters = clusters
        self.environ = environ
        self._connections: dict[str, ClusterConnection] = {}
        self._retired: list[ClusterConnection] = []  # of changed clusters: their jobs go on
        self._lock = threading.Lock()

    def reconfigure(self, clusters: Mapping[str, ClusterSpec]) -> None:
        """New cluster settings: the next use of a changed or new cluster connects anew; jobs
        already running keep their connection until the pool closes."""
        with self._lock:
            self.clusters = clusters
            for name, connection in list(self._connections.items()):
                if clusters.get(name) != connection.spec:
                    self._retired.append(self._connections.pop(name))

    def connection(self, name: str) -> ClusterConnection:
        with self._lock:
            if name not in self._connections:
                self._connections[name] = ClusterConnection(self.clusters[name], self.environ,
                                                            self)
            return self._connections[name]

    def close(self) -> None:
        with self._lock:
            for connection in [*self._connections.values(), *self._retired]:
                connection.close()
