"""Slurm's MailProg: ``chatops-mailprog -s SUBJECT MAIL_USER``.

slurmctld runs this as the ``slurm`` user, in /var/log/slurm, with an environment of only
``SLURM_*`` variables (no PATH, no HOME), an empty stdin, and ignores the exit status. Calls for one
job can run at the same time and in any order. So this is the hot path, and it does as little as
possible: it records argv and the ``SLURM_*`` environment as one event and hands it over,

* to ``CHATOPS_EVENTS_URL`` with an HTTP POST (``Authorization: Bearer CHATOPS_EVENTS_TOKEN``,
  a hard deadline of ``CHATOPS_EVENTS_TIMEOUT`` seconds, 2 by default), or
* when no URL is set, or the POST fails in any way or answers non-2xx, into the spool directory:
  a ``.<name>.<pid>-<random>.tmp`` file in that directory (its own, per writer: the web server
  may be spooling the same event from a POST that timed out), fsync, rename to
  ``<time_ns>-<pid>-<random>.json``
  (mode 0660), fsync of the directory. Readers take only names that match ``[0-9]*.json``.

It never calls sacct, always exits 0, and reports its own failures on stderr and to syslog (the
token is never logged; an event it could not spool is logged whole, so nothing is lost silently).

Standard library only, and on the spool path only modules a bare interpreter has already loaded
(``posix``, ``sys``, ``time``): one call must cost at most 1.5x a bare ``/usr/bin/python3 -I -S -c
pass`` (see bench/mailprog.py). ``os`` alone costs a sixth of that budget, ``re`` and ``json`` more
than all of it; hence ``posix`` calls, string paths and the small JSON encoder below. Run it
through ``scripts/chatops-mailprog`` (``#!/usr/bin/python3 -IS``), not a console-script wrapper
(a venv's site import costs more).

Settings, since Slurm strips the environment: ``CHATOPS_SPOOL_DIR``, ``CHATOPS_HOME``,
``CHATOPS_EVENTS_URL``, ``CHATOPS_EVENTS_TOKEN``, ``CHATOPS_EVENTS_TIMEOUT`` from the environment,
else from a KEY=VALUE file: ``$CHATOPS_MAILPROG_CONF``, else ``/etc/chatops/mailprog.conf``, else
``<repo root>/var/mailprog.conf``. The spool defaults to ``$CHATOPS_HOME/spool`` and
``CHATOPS_HOME`` to ``<repo root>/var``; relative paths are taken from the repo root.

Event (JSON, UTF-8; argv bytes that are not UTF-8 arrive as ``\\udcXX`` escapes)::

    {"version": 1, "id": "<time_ns>-<pid>-<random>", "argv": [...], "subject": str|null,
     "mail_user": str|null, "env": {"SLURM_...": ...},
     "received_at": "2026-11-24T00:08:14.038585+00:00", "host": str}

``id`` is also the spool file's name (plus ``.json``). An event whose POST timed out after the
server took it is spooled as well, so the intake should treat a repeated ``id`` as a duplicate.
"""

import posix
import sys
import time

TYPE_CHECKING = False  # typing itself costs an import on the hot path
if TYPE_CHECKING:
    from collections.abc import Mapping

EVENT_VERSION = 1
SETTING_KEYS = (
    "CHATOPS_SPOOL_DIR",
    "CHATOPS_HOME",
    "CHATOPS_EVENTS_URL",
    "CHATOPS_EVENTS_TOKEN",
    "CHATOPS_EVENTS_TIMEOUT",
)
DEFAULT_TIMEOUT = 2.0
MAX_TIMEOUT = 10.0
SYSTEM_CONF = "/etc/chatops/mailprog.conf"


def _dirname(path: str) -> str:
    head, slash, _ = path.rstrip("/").rpartition("/")
    return (head or "/") if slash else "."


def _join(*parts: str) -> str:
    return "/".join(part.rstrip("/") for part in parts[:-1]) + "/" + parts[-1]


def _here() -> str:
    path = __file__
    return path if path.startswith("/") else _join(posix.getcwd(), path)


REPO_ROOT = _dirname(_dirname(_here()))
FILE_MODE = 0o660
DIR_MODE = 0o2770

_PROG = "chatops-mailprog"


def _log(message: str) -> None:
    """Report a failure on stderr and to syslog; never raise."""
    try:
        sys.stderr.write(f"{_PROG}: {message}\n")
        sys.stderr.flush()
    except Exception:
        pass
    try:
        import syslog

        syslog.openlog(_PROG, syslog.LOG_PID, syslog.LOG_USER)
        syslog.syslog(syslog.LOG_ERR, message)
        syslog.closelog()
    except Exception:
        pass


# --- settings --------------------------------------------------------------------------------


def read_conf(path: str) -> dict[str, str]:
    """Parse a KEY=VALUE file (``#`` comments, optional ``export``, optional quotes)."""
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            if line.startswith("export "):
                line = line[7:].lstrip()
            key, _, value = line.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            values[key.strip()] = value
    return values


def _absolute(path: str) -> str:
    # slurmctld's cwd (/var/log/slurm) is no anchor for a relative path; the repo root is.
    return path if path.startswith("/") else _join(REPO_ROOT, path)


def process_environ() -> dict[str, str]:
    """The CHATOPS_* and SLURM_* part of this process's environment, without importing os."""
    if "os" in sys.modules:  # already paid for (an in-process caller): it sees later changes
        environ = sys.modules["os"].environ
        return {k: v for k, v in environ.items() if k.startswith(("SLURM_", "CHATOPS_"))}
    encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    return {
        key.decode(encoding, errors): value.decode(encoding, errors)
        for key, value in posix.environ.items()
        if key.startswith((b"SLURM_", b"CHATOPS_"))
    }


def load_settings(environ: "Mapping[str, str] | None" = None) -> dict[str, str]:
    """The settings: environment first, then the first conf file found, then defaults.

    Returns a dict with ``spool_dir``, ``events_url``, ``events_token``, ``timeout`` (as text),
    and ``conf`` (the file read, or "").
    """
    env = process_environ() if environ is None else environ
    explicit = env.get("CHATOPS_MAILPROG_CONF")
    if explicit:
        candidates = [explicit]
    else:
        candidates = [SYSTEM_CONF, _join(REPO_ROOT, "var", "mailprog.conf")]
    values: dict[str, str] = {}
    conf = ""
    for path in candidates:
        try:
            values = read_conf(path)
            conf = path
            break
        except FileNotFoundError:
            if explicit:
                _log(f"CHATOPS_MAILPROG_CONF={path}: no such file")
        except (OSError, UnicodeDecodeError) as exc:
            # Present but unreadable: say so, and do not silently pick another file.
            _log(f"cannot read {path}: {exc.__class__.__name__}: {exc}")
            break
    for key in SETTING_KEYS:
        if key in env:
            values[key] = env[key]
    home = values.get("CHATOPS_HOME") or _join(REPO_ROOT, "var")
    spool = values.get("CHATOPS_SPOOL_DIR") or _join(_absolute(home), "spool")
    return {
        "spool_dir": _absolute(spool),
        "events_url": values.get("CHATOPS_EVENTS_URL", "").strip(),
        "events_token": values.get("CHATOPS_EVENTS_TOKEN", "").strip(),
        "timeout": values.get("CHATOPS_EVENTS_TIMEOUT", "").strip(),
        "conf": conf,
    }


# --- the event ---------------------------------------------------------------------------------


def split_argv(args: list[str]) -> tuple[str | None, str | None]:
    """(subject, mail_user) from ``-s SUBJECT MAIL_USER``, leniently.

    ``-sSUBJECT`` is accepted; several positional arguments are joined with commas (mail(1)
    style); anything unexpected is still kept in the event's ``argv``.
    """
    subject: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if subject is None and arg == "-s" and i + 1 < len(args):
            subject = args[i + 1]
            i += 2
            continue
        if subject is None and arg.startswith("-s") and len(arg) > 2:
            subject = arg[2:]
        elif arg not in ("-s", "--") and arg != "":
            rest.append(arg)
        i += 1
    return subject, (",".join(rest) if rest else None)


def _iso_utc(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{rest // 1000:06d}+00:00"


def new_event_id(now_ns: int) -> str:
    """``<time_ns>-<pid>-<8 hex>``: unique, sortable by time, never derived from the arguments."""
    return f"{now_ns}-{posix.getpid()}-{posix.urandom(4).hex()}"


def build_event(
    args: list[str], environ: "Mapping[str, str]", now_ns: int, event_id: str | None = None
) -> dict[str, object]:
    """The event for one call: argv, subject, mail user, the SLURM_* environment, time, host."""
    subject, mail_user = split_argv(args)
    env = {key: environ[key] for key in sorted(environ) if key.startswith("SLURM_")}
    return {
        "version": EVENT_VERSION,
        "id": event_id or new_event_id(now_ns),
        "argv": list(args),
        "subject": subject,
        "mail_user": mail_user,
        "env": env,
        "received_at": _iso_utc(now_ns),
        "host": posix.uname().nodename,
    }


_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)}
_ESCAPES.update({0x22: '\\"', 0x5C: "\\\\", 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n"})
_ESCAPES.update({0x0C: "\\f", 0x0D: "\\r"})


def _json(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPES) + '"'
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(_json(str(k)) + ":" + _json(v) for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json(v) for v in value) + "]"
    return _json(str(value))


def encode_event(event: dict[str, object]) -> bytes:
    """JSON bytes, the same as ``json.dumps(event, ensure_ascii=False)`` would decode to.

    Lone surrogates (argv bytes that were not UTF-8) become ``\\udcXX`` escapes, as with json.
    """
    return (_json(event) + "\n").encode("utf-8", "backslashreplace")


# --- delivery --------------------------------------------------------------------------------


def _makedirs(path: str) -> None:
    try:
        posix.mkdir(path, 0o777)
    except FileExistsError:
        pass
    except FileNotFoundError:
        _makedirs(_dirname(path))
        posix.mkdir(path, 0o777)


def _make_spool_dir(spool_dir: str) -> None:
    _makedirs(_dirname(spool_dir))
    try:
        posix.mkdir(spool_dir, 0o770)
    except FileExistsError:
        return
    posix.chmod(spool_dir, DIR_MODE)  # mkdir drops the setgid bit; set it (and beat the umask)


def spool_event(data: bytes, spool_dir: str, event_id: str) -> str:
    """Write one event file, ``<event_id>.json``, atomically; return its path. Raises OSError."""
    name = f"{event_id}.json"
    final = _join(spool_dir, name)
    # Unique per writer: the web server may spool the same event (a POST that timed out after it
    # took it) while the MailProg spools it too; both renames land the same bytes under one name.
    tmp = _join(spool_dir, f".{name}.{posix.getpid()}-{posix.urandom(6).hex()}.tmp")
    flags = posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_CLOEXEC | posix.O_NOFOLLOW
    try:
        fd = posix.open(tmp, flags, FILE_MODE)
    except FileNotFoundError:
        _make_spool_dir(spool_dir)
        fd = posix.open(tmp, flags, FILE_MODE)
    try:
        try:
            posix.fchmod(fd, FILE_MODE)  # whatever slurmctld's umask: the service reads, deletes
            view = memoryview(data)
            while view:
                view = view[posix.write(fd, view) :]
            posix.fsync(fd)
        finally:
            posix.close(fd)
        posix.rename(tmp, final)
    except BaseException:
        try:
            posix.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = posix.open(spool_dir, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
        try:
            posix.fsync(dfd)
        finally:
            posix.close(dfd)
    except OSError:
        pass
    return final


class _Deadline(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _Deadline("deadline exceeded")


def safe_url(url: str) -> str:
    """The URL without user info or query, for logs."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
    except ValueError:
        return "<invalid URL>"


def post_event(url: str, token: str, data: bytes, timeout: float) -> int:
    """POST the event; return the HTTP status. Raises on any failure or a non-2xx answer.

    ``timeout`` bounds the whole exchange (connect, send, answer), not each socket operation.
    """
    import http.client
    import signal
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("CHATOPS_EVENTS_URL must be an http:// or https:// URL")
    if token and not all(" " < ch < "\x7f" for ch in token):
        raise ValueError("CHATOPS_EVENTS_TOKEN holds characters a header cannot carry")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"{_PROG}/{EVENT_VERSION}",
        "Connection": "close",
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        armed = True
    except ValueError:  # not the main thread: the per-operation socket timeout only
        armed = False
    if armed:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        conn.request("POST", path, body=data, headers=headers)
        response = conn.getresponse()
        response.read(65536)
        status = response.status
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        conn.close()
    if not 200 <= status < 300:
        raise RuntimeError(f"HTTP {status}")
    return status


def _timeout(text: str) -> float:
    try:
        value = float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        _log(f"CHATOPS_EVENTS_TIMEOUT={text!r} is not a number; using {DEFAULT_TIMEOUT}")
        return DEFAULT_TIMEOUT
    return min(max(value, 0.1), MAX_TIMEOUT) if value == value else DEFAULT_TIMEOUT


def deliver(args: list[str], environ: "Mapping[str, str]") -> str:
    """Record one call: POST it, or spool it. Returns "posted", "spooled" or "lost" (logged)."""
    settings = load_settings(environ)
    now_ns = time.time_ns()
    event_id = new_event_id(now_ns)
    data = encode_event(build_event(args, environ, now_ns, event_id))
    url = settings["events_url"]
    token = settings["events_token"]
    if url:
        try:
            post_event(url, token, data, _timeout(settings["timeout"]))
            return "posted"
        except BaseException as exc:  # noqa: B036 - whatever happens, fall back to the spool
            reason = f"{exc.__class__.__name__}: {exc}"
            if token:
                reason = reason.replace(token, "***")
            _log(f"POST to {safe_url(url)} failed ({reason}); spooling")
    try:
        spool_event(data, settings["spool_dir"], event_id)
        return "spooled"
    except OSError as exc:
        event = data.decode("utf-8", "replace").rstrip("\n")
        _log(f"cannot spool into {settings['spool_dir']}: {exc}; event: {event}")
        return "lost"


USAGE = """usage: chatops-mailprog -s SUBJECT MAIL_USER

Slurm's MailProg (MailProg= in slurm.conf): slurmctld runs it as the slurm user at a job's
mail events; it records them for the chatops dispatcher (a POST to CHATOPS_EVENTS_URL, or a
file in CHATOPS_SPOOL_DIR), read from /etc/chatops/mailprog.conf or $CHATOPS_MAILPROG_CONF.
Every call with arguments is recorded, so test it with a made-up job (DEPLOY.md, Slurm's
MailProg). It always exits 0.
"""


def main(argv: list[str] | None = None) -> int:
    """Console entry point. Always returns 0: slurmctld ignores the status anyway."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--help"], ["-h"]):  # an admin trying it out; slurmctld always passes -s
        sys.stdout.write(USAGE)
        return 0
    try:
        deliver(args, process_environ())
    except BaseException as exc:  # noqa: B036 - never fail in front of slurmctld
        _log(f"unexpected error: {exc.__class__.__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
