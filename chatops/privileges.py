"""Who runs what: the job account, the service account, and what every process does at start.

- **Local jobs run as the job account** (``CHATOPS_JOB_USER``), an unprivileged account of
  their own: they cannot read the database, the logs of other jobs, the env file or the
  service's memory. The dispatcher that starts them must be root, or hold exactly CAP_SETUID,
  CAP_SETGID and CAP_KILL, so that it can switch to that account in the child (``Popen(user=,
  group=, extra_groups=[])``) and still stop, time out and clean up its jobs' process groups.
- **``chatops run`` started as root** keeps its dispatcher privileged and runs the web server
  and the bots in a child that has dropped to the service account (``CHATOPS_SERVICE_USER``).
- **Every long-running chatops process calls ``harden_process()`` at start**:
  ``prctl(PR_SET_DUMPABLE, 0)``, because ``/proc/PID/environ`` keeps the environment a process
  started with (secrets included) and same-user processes — a job without a job account — could
  read it, and ``/proc/PID/mem`` with it. It also clears the ambient capabilities, so that a
  dispatcher given CAP_SETUID, CAP_SETGID and CAP_KILL passes none of them to its jobs.
"""

from __future__ import annotations

import ctypes
import grp
import logging
import os
import pwd
import signal
import stat
import subprocess
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chatops.settings import Settings, SetupError

log = logging.getLogger("chatops.privileges")

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
JOB_CAPABILITIES = {5: "CAP_KILL", 6: "CAP_SETGID", 7: "CAP_SETUID"}  # bit -> name
USERADD = "useradd --system --no-create-home --shell /usr/sbin/nologin chatops-job"

_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int = 0) -> None:
    if _libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def harden_process() -> None:
    """No reading of this process's environment or memory by same-user processes, no core
    dumps, and no capabilities handed down to what it starts."""
    _prctl(_PR_SET_DUMPABLE, 0)
    try:
        _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:  # a kernel without ambient capabilities has none to clear
        pass
    _clear_inheritable_capabilities()


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _clear_inheritable_capabilities() -> None:
    """Empty the inheritable set (systemd's AmbientCapabilities= fills it): a program with file
    capabilities could otherwise pick them up in a job."""
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (_CapData * 2)()
    if _libc.capget(ctypes.byref(header), data) != 0:
        return
    if any(d.inheritable for d in data):
        for d in data:
            d.inheritable = 0
        _libc.capset(ctypes.byref(header), data)


@dataclass(frozen=True)
class Account:
    """A local account: the job account, or the service account."""

    name: str
    uid: int
    gid: int
    home: str

    @classmethod
    def named(cls, name: str, setting: str) -> Account:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise SetupError(f"{setting}={name}: there is no such account on this host; create "
                             f"it (e.g. `{USERADD.replace('chatops-job', name)}`) or fix "
                             f"{setting}") from None
        return cls(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)

    def give(self, path: Path) -> None:
        """Make a folder (and what is in it) this account's."""
        for folder, _, files in os.walk(path):
            for name in [folder, *(os.path.join(folder, f) for f in files)]:
                os.lchown(name, self.uid, self.gid)

    def can(self, path: Path, what: int) -> bool:
        """Whether this account (with its own group only, as jobs run) has ``what``
        (``os.R_OK | os.W_OK | os.X_OK`` bits) on ``path`` by its mode."""
        st = path.stat()
        shift = 6 if st.st_uid == self.uid else 3 if st.st_gid == self.gid else 0
        return (st.st_mode >> shift) & what == what

    def unreachable(self, path: Path, what: int) -> Path | None:
        """The first folder on the way to ``path`` (or ``path`` itself) that this account cannot
        pass, or None. Checked as the dispatcher is root: the kernel would let it through."""
        for folder in reversed(path.parents):
            if not self.can(folder, os.X_OK):
                return folder
        return None if self.can(path, what) else path

    def make_dir(self, path: Path) -> None:
        """Make a folder as this account (the dispatcher may not be allowed to give it away)."""
        subprocess.run(["mkdir", "-p", "--", str(path)], check=True, stdin=subprocess.DEVNULL,
                       capture_output=True, user=self.uid, group=self.gid, extra_groups=[])


def job_account(settings: Settings) -> Account | None:
    """The account local jobs run as, or None when ``CHATOPS_JOB_USER`` is not set."""
    name = settings.environ.get("CHATOPS_JOB_USER", "").strip()
    if not name:
        return None
    account = Account.named(name, "CHATOPS_JOB_USER")
    if account.uid == 0 or account.uid == os.geteuid():
        which = "root" if account.uid == 0 else "the account the service runs as"
        raise SetupError(f"CHATOPS_JOB_USER={name} is {which}: jobs need an account of their "
                         f"own (`{USERADD}`)")
    return account


def missing_capabilities() -> list[str]:
    """What this process lacks to run jobs as another account (nothing when root)."""
    if os.geteuid() == 0:
        return []
    with open("/proc/self/status") as f:
        effective = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return [name for bit, name in JOB_CAPABILITIES.items() if not effective >> bit & 1]


def who_am_i() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def without_job_account() -> str:
    """The loud warning for a site whose jobs run as the service itself."""
    who = who_am_i()
    if os.geteuid() == 0:
        return ("CHATOPS_JOB_USER is not set and the dispatcher runs as root: every local job "
                "runs as root and can do anything on this host, read every secret included. "
                f"Create a job account (`{USERADD}`) and set CHATOPS_JOB_USER=chatops-job "
                "(DEPLOY.md, 'The job account')")
    return (f"CHATOPS_JOB_USER is not set: local jobs run as {who}, the service's own account, "
            f"and can read everything {who} can — the database, the logs of every job, the "
            "env file and credential files. Create a job account "
            f"(`{USERADD}`), run the dispatcher as root (or with CAP_SETUID, CAP_SETGID and "
            "CAP_KILL) and set CHATOPS_JOB_USER=chatops-job (DEPLOY.md, 'The job account')")


def prepare_for_jobs(settings: Settings, account: Account) -> None:
    """Check that this process can run jobs as ``account`` and that the account can reach what
    a job needs; give it its writeable folder. Raises SetupError saying what to fix."""
    missing = missing_capabilities()
    if missing:
        raise SetupError(
            f"CHATOPS_JOB_USER={account.name}, but this process ({who_am_i()}) cannot start "
            f"jobs as another account and stop them: it lacks {', '.join(missing)}. Run the "
            "dispatcher as root, or give it exactly CAP_SETUID, CAP_SETGID and CAP_KILL "
            "(systemd: AmbientCapabilities=CAP_SETUID CAP_SETGID CAP_KILL)")
    writeable = settings.writeable_dir
    if os.geteuid() == 0:
        writeable.mkdir(parents=True, exist_ok=True)
        if writeable.stat().st_uid != account.uid:
            log.info("giving %s to the job account %s", writeable, account.name)
            account.give(writeable)
        writeable.chmod(0o700)
    elif not writeable.is_dir():
        raise SetupError(f"CHATOPS_WRITEABLE_DIR {writeable} does not exist, and this process "
                         f"may not make it for {account.name}: `install -d -o {account.name} "
                         f"-m 0700 {writeable}`")
    for path, what, need in ((writeable, os.W_OK | os.X_OK, "write into"),
                             (settings.workspace_dir, os.R_OK | os.X_OK, "read")):
        if not path.exists():
            continue
        blocked = account.unreachable(path, what)
        if blocked is not None:
            mode = stat.filemode(blocked.stat().st_mode)
            raise SetupError(f"the job account {account.name} cannot {need} {path}: {blocked} "
                             f"does not let it through (mode {mode}, owner {_owner(blocked)}). "
                             "Allow it (e.g. chmod o+x on the folders on the way) or move "
                             "CHATOPS_WRITEABLE_DIR / CHATOPS_WORKSPACE_DIR")
    if settings.is_sqlite:
        _close_to_others(Path(settings.database_url.removeprefix("sqlite:///")))


def owner_for(path: Path) -> tuple[int, int] | None:
    """Running as root: who what we make under ``path`` must belong to — ``path``'s owner, or
    its parent's when root made ``path`` — so that the unprivileged web server and bots can use
    it. None when not root, or when everything is root's anyway."""
    if os.geteuid() != 0:
        return None
    for candidate in (path, path.parent):
        try:
            st = candidate.stat()
        except FileNotFoundError:
            continue
        if st.st_uid != 0:
            return st.st_uid, st.st_gid
    return None


def warn_if_serving_as_root() -> None:
    """``chatops run`` as root without CHATOPS_SERVICE_USER serves the web and bots as root."""
    if os.geteuid() == 0:
        log.warning("chatops run runs as root without CHATOPS_SERVICE_USER: the web server and "
                    "the bots run as root too. Set CHATOPS_SERVICE_USER=chatops (DEPLOY.md)")


def _owner(path: Path) -> str:
    st = path.stat()
    try:
        return f"{pwd.getpwuid(st.st_uid).pw_name}:{grp.getgrgid(st.st_gid).gr_name}"
    except KeyError:
        return f"{st.st_uid}:{st.st_gid}"


def _close_to_others(database: Path) -> None:
    """The database (and its WAL) readable by nobody but the service (and its group)."""
    for path in (database, database.with_name(database.name + "-wal"),
                 database.with_name(database.name + "-shm")):
        try:
            mode = path.stat().st_mode
            if mode & 0o007:
                path.chmod(stat.S_IMODE(mode) & ~0o007)
                log.info("%s was readable by any account: now mode %o", path,
                         stat.S_IMODE(mode) & ~0o007)
        except (FileNotFoundError, PermissionError):
            pass


# -- chatops run as root: the web server and bots in a child, as the service account -----------

def service_account(settings: Settings) -> Account | None:
    """The account ``chatops run`` started as root hands the web server and bots to, or None
    when everything runs in this one process."""
    name = settings.environ.get("CHATOPS_SERVICE_USER", "").strip()
    if not name or os.geteuid() != 0:
        return None
    account = Account.named(name, "CHATOPS_SERVICE_USER")
    if account.uid == 0:
        raise SetupError(f"CHATOPS_SERVICE_USER={name} is root: name the unprivileged account "
                         "the web server and bots should run as (e.g. chatops)")
    return account


class ServicePart:
    """The child process serving the web server and bots as the service account."""

    def __init__(self, pid: int, account: Account):
        self.pid = pid
        self.account = account
        self._ended = threading.Event()

    def watch(self, on_end: Callable[[], None]) -> None:
        """Call ``on_end`` (from a thread) if the child ends first."""
        def wait() -> None:
            _, status = os.waitpid(self.pid, 0)
            self._ended.set()
            log.error("the web server and bots (pid %s, %s) ended (%s): stopping", self.pid,
                      self.account.name, _exit_text(status))
            on_end()

        threading.Thread(target=wait, name="service-part", daemon=True).start()

    def stop(self, timeout: float = 30) -> None:
        if self._ended.is_set():
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if not self._ended.wait(timeout):
            os.kill(self.pid, signal.SIGKILL)
            self._ended.wait(5)


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.WEXITSTATUS(status)}"


def fork_service_part(settings: Settings, serve: Callable[[], int | None]) -> ServicePart | None:
    """As root with ``CHATOPS_SERVICE_USER``: fork a child that drops to that account and runs
    ``serve`` (it never returns here); the parent gets the child. Otherwise None. Call it
    before any thread or database connection exists."""
    account = service_account(settings)
    if account is None:
        return None
    _give_home(settings, account)
    pid = os.fork()
    if pid:
        return ServicePart(pid, account)
    code = 1
    try:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)  # never outlive the dispatcher part
        os.initgroups(account.name, account.gid)
        os.setgid(account.gid)
        os.setuid(account.uid)
        os.environ.update(HOME=account.home, USER=account.name, LOGNAME=account.name)
        harden_process()  # a change of user resets it
        code = serve() or 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _give_home(settings: Settings, account: Account) -> None:
    """What the web server and bots write in CHATOPS_HOME must be theirs: the home, the SQLite
    database, the logs tree and the wake-up sockets' folder (only what root owns is changed)."""
    paths = [settings.home, settings.logs_dir, settings.run_dir]
    if settings.is_sqlite:
        database = Path(settings.database_url.removeprefix("sqlite:///"))
        paths += [database, database.with_name(database.name + "-wal"),
                  database.with_name(database.name + "-shm")]
    for path in (settings.home, settings.logs_dir, settings.run_dir):
        path.mkdir(mode=0o750, parents=True, exist_ok=True)
    if settings.is_sqlite and paths[3].exists():
        # The WAL's files made now, before either process opens the database: else the first
        # to open it makes them, and if that is root's dispatcher, SQLite creates them as root
        # and hands them over only after, a moment in which the web server finds the database
        # read-only. (Never truncated: an existing WAL may hold commits.)
        for path in paths[4:]:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o640))
    for path in paths:
        try:
            if path.stat().st_uid == 0:
                os.chown(path, account.uid, account.gid)
        except FileNotFoundError:
            pass
