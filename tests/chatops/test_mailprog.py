"""chatops-mailprog, run for real: as slurmctld runs it (a subprocess with only SLURM_* variables,
no PATH or HOME, cwd elsewhere, stdin empty), into a real spool directory or a real HTTP server."""

from __future__ import annotations

import http.server
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chatops.mailprog import encode_event, spool_event
from chatops.slurm.events import parse_event
from tests.support.serving import serve_in_thread
from tests.support.slurm_mail import SLURM_ENV, SUBJECT

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "chatops-mailprog"
NAME = re.compile(r"^\d{19}-\d+-[0-9a-f]{8}\.json$")
TOKEN = "tok-s3cret-4f9a"
SYSTEM_CONF = Path("/etc/chatops/mailprog.conf")


def _neutral(env: dict[str, str], root: Path = ROOT) -> dict[str, str]:
    """Keep a site's own conf file (which may name an events URL) out of the test."""
    if SYSTEM_CONF.exists() or (root / "var" / "mailprog.conf").exists():
        env.setdefault("CHATOPS_EVENTS_URL", "")
    return env


def run(
    args: list[str | bytes],
    env: dict[str, str],
    cwd: Path,
    script: Path = SCRIPT,
    user: str | None = None,
    timeout: float = 20,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        user=user,  # with its own primary group only, as slurmctld's child would have
        group=pwd.getpwnam(user).pw_gid if user else None,
        extra_groups=[] if user else None,
    )


def spooled(spool: Path) -> list[dict[str, object]]:
    files = sorted(spool.iterdir()) if spool.exists() else []
    leftovers = [p.name for p in files if not NAME.match(p.name)]
    assert not leftovers, leftovers
    return [json.loads(p.read_bytes()) for p in files]


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """Stands in for /var/log/slurm: not the repo, not the spool."""
    path = tmp_path / "log"
    path.mkdir()
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of just what the MailProg needs, so its repo-relative defaults can be tested."""
    root = tmp_path / "repo"
    (root / "chatops").mkdir(parents=True)
    (root / "scripts").mkdir()
    (root / "chatops" / "__init__.py").write_text("")
    shutil.copy2(ROOT / "chatops" / "mailprog.py", root / "chatops" / "mailprog.py")
    shutil.copy2(SCRIPT, root / "scripts" / "chatops-mailprog")
    return root


# --- spool mode --------------------------------------------------------------------------------


def test_spools_one_event_with_argv_and_slurm_env(tmp_path: Path, cwd: Path) -> None:
    spool = tmp_path / "spool"
    env = _neutral(dict(SLURM_ENV, CHATOPS_SPOOL_DIR=str(spool)))
    before = datetime.now(UTC)
    proc = run(["-s", SUBJECT, "slack:C0123,someone"], env, cwd)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    (path,) = list(spool.iterdir())
    assert NAME.match(path.name)
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    event = json.loads(path.read_bytes())
    keys = {"version", "id", "argv", "subject", "mail_user", "env", "received_at", "host"}
    assert set(event) == keys
    assert event["version"] == 1
    assert path.name == f"{event['id']}.json"
    assert event["argv"] == ["-s", SUBJECT, "slack:C0123,someone"]
    assert event["subject"] == SUBJECT
    assert event["mail_user"] == "slack:C0123,someone"
    assert event["env"] == SLURM_ENV  # only SLURM_*: not CHATOPS_*, not PWD
    received = datetime.fromisoformat(event["received_at"])
    assert before <= received <= datetime.now(UTC)
    assert event["host"] == os.uname().nodename
    ev = parse_event(event)
    assert (ev.job_id, ev.exit_code, ev.state, ev.source) == (11, 3, "FAILED", "env")
    assert [tuple(r) for r in ev.receivers] == [("slack", "C0123"), (None, "someone")]


def test_awkward_text_survives(tmp_path: Path, cwd: Path) -> None:
    spool = tmp_path / "spool"
    name = 'q"uo\\te\ttab\nnl\x01ctl ünï ✓ 計算 \U0001f680'
    env = _neutral(dict(SLURM_ENV, SLURM_JOB_NAME=name, CHATOPS_SPOOL_DIR=str(spool)))
    subject = f"Slurm Job_id=11 Name={name} Began, Queued time 00:00:01"
    raw_subject = subject.encode() + b" \xff\xfe"  # not UTF-8: kept byte for byte
    assert run([b"-s", raw_subject, "bob"], env, cwd).returncode == 0
    (event,) = spooled(spool)
    assert event["env"]["SLURM_JOB_NAME"] == name
    assert event["subject"].encode("utf-8", "surrogateescape") == raw_subject
    assert parse_event(event).job_name == name


def test_encoder_matches_json() -> None:
    event = {
        "version": 1,
        "argv": ["-s", 'a"b\\c\n\r\t\b\f\x00\x1f\x7f\u2028 ü 🚀', "\udcff"],
        "subject": None,
        "mail_user": "",
        "env": {"SLURM_X": "é", "SLURM_Y": "{}[],:"},
        "received_at": "2026-01-01T00:00:00.000000+00:00",
        "host": "h",
        "flags": [True, False, -3],
    }
    data = encode_event(event)
    data.decode("utf-8")  # strictly valid UTF-8, lone surrogates escaped
    assert json.loads(data) == event


@pytest.mark.parametrize(
    "args,subject,mail_user",
    [
        ([], None, None),
        (["-s"], None, None),
        (["-s", SUBJECT], SUBJECT, None),
        ([SUBJECT], None, SUBJECT),
        (["-s" + SUBJECT, "bob"], SUBJECT, "bob"),
        (["-s", SUBJECT, "a", "b", "--", "c"], SUBJECT, "a,b,c"),
        (["-s", "", "bob"], "", "bob"),
        (["-x", "-s", SUBJECT, "bob"], SUBJECT, "-x,bob"),
        (["-s", SUBJECT, "../../etc/passwd"], SUBJECT, "../../etc/passwd"),
    ],
)
def test_malformed_argv_is_still_spooled(
    tmp_path: Path, cwd: Path, args: list[str], subject: str | None, mail_user: str | None
) -> None:
    spool = tmp_path / "spool"
    proc = run(args, _neutral(dict(SLURM_ENV, CHATOPS_SPOOL_DIR=str(spool))), cwd)
    assert proc.returncode == 0, proc.stderr
    (event,) = spooled(spool)  # one file, named by time/pid/random: never by user input
    assert (event["argv"], event["subject"], event["mail_user"]) == (args, subject, mail_user)
    assert set(tmp_path.iterdir()) == {spool, cwd}  # nothing named after the arguments


def test_settings_from_conf_file(tmp_path: Path, cwd: Path) -> None:
    spool = tmp_path / "conf-spool"
    conf = tmp_path / "mailprog.conf"
    conf.write_text(f'# chatops MailProg\n\nexport CHATOPS_SPOOL_DIR="{spool}"\nJUNK\n')
    env = dict(SLURM_ENV, CHATOPS_MAILPROG_CONF=str(conf))
    proc = run(["-s", SUBJECT, "bob"], env, cwd)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert [e["subject"] for e in spooled(spool)] == [SUBJECT]
    # CHATOPS_HOME in the file: the spool is $CHATOPS_HOME/spool
    home = tmp_path / "home"
    conf.write_text(f"CHATOPS_HOME={home}\n")
    assert run(["-s", "two", "bob"], env, cwd).returncode == 0
    assert [e["subject"] for e in spooled(home / "spool")] == ["two"]
    # the environment wins over the file
    conf.write_text(f"CHATOPS_SPOOL_DIR={spool}\n")
    env_spool = tmp_path / "env-spool"
    proc = run(["-s", "three", "bob"], dict(env, CHATOPS_SPOOL_DIR=str(env_spool)), cwd)
    assert proc.returncode == 0
    assert [e["subject"] for e in spooled(env_spool)] == ["three"]
    assert len(spooled(spool)) == 1


@pytest.mark.skipif(SYSTEM_CONF.exists(), reason="/etc/chatops/mailprog.conf takes precedence")
def test_repo_conf_and_defaults_through_a_symlink(tree: Path, tmp_path: Path, cwd: Path) -> None:
    """Only SLURM_* in the environment, as under slurmctld: the repo's var/ decides."""
    # as `make` links it: .venv/bin/chatops-mailprog -> ../../scripts/chatops-mailprog (relative),
    # and one more link to that link, from elsewhere
    venv_bin = tree / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "chatops-mailprog").symlink_to("../../scripts/chatops-mailprog")
    link = tmp_path / "elsewhere" / "mailprog"
    link.parent.mkdir()
    link.symlink_to(venv_bin / "chatops-mailprog")
    # no conf at all: <repo>/var/spool, created setgid and group-writable
    proc = run(["-s", SUBJECT, "bob"], dict(SLURM_ENV), cwd, script=link)
    assert (proc.returncode, proc.stderr) == (0, "")
    default_spool = tree / "var" / "spool"
    assert stat.S_IMODE(default_spool.stat().st_mode) == 0o2770
    assert [e["subject"] for e in spooled(default_spool)] == [SUBJECT]
    # <repo>/var/mailprog.conf, with a relative path: taken from the repo root, not the cwd
    (tree / "var" / "mailprog.conf").write_text("CHATOPS_SPOOL_DIR=var/other\n")
    assert run(["-s", "two", "bob"], dict(SLURM_ENV), cwd, script=link).returncode == 0
    assert [e["subject"] for e in spooled(tree / "var" / "other")] == ["two"]
    assert list(cwd.iterdir()) == []
    # straight through the relative link too
    script = venv_bin / "chatops-mailprog"
    assert run(["-s", "three", "bob"], dict(SLURM_ENV), cwd, script=script).returncode == 0
    assert len(spooled(tree / "var" / "other")) == 2


@pytest.mark.slow
def test_concurrent_calls_all_land(tmp_path: Path, cwd: Path) -> None:
    spool = tmp_path / "spool"
    env = _neutral(dict(SLURM_ENV, CHATOPS_SPOOL_DIR=str(spool)))
    procs = [
        subprocess.Popen(
            [str(SCRIPT), "-s", f"{SUBJECT} #{n}", "bob"],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in range(200)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 200
    assert errors == [b""] * 200
    events = spooled(spool)  # asserts no temp file is left
    assert len(events) == 200
    assert sorted(e["subject"] for e in events) == sorted(f"{SUBJECT} #{n}" for n in range(200))


def test_unwritable_spool_still_exits_0(tmp_path: Path, cwd: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = _neutral(dict(SLURM_ENV, CHATOPS_SPOOL_DIR=str(blocker / "spool")))
    proc = run(["-s", SUBJECT, "bob"], env, cwd)
    assert proc.returncode == 0
    assert "chatops-mailprog: cannot spool into" in proc.stderr
    assert SUBJECT in proc.stderr  # the event itself is logged: not lost silently


def _unprivileged() -> str:
    if os.geteuid() != 0:
        pytest.skip("needs root to run as another user")
    try:
        return pwd.getpwnam("nobody").pw_name
    except KeyError:
        pytest.skip("no 'nobody' user")


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A temp dir another user can reach (pytest's own tmp_path sits under a 0700 dir)."""
    path = Path(tempfile.mkdtemp(prefix="test-mailprog-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_runs_as_an_unprivileged_user_into_a_setgid_spool(public_tmp: Path) -> None:
    """The slurm user's situation: not root, no HOME, a group-owned setgid spool (DEPLOY.md)."""
    user = _unprivileged()
    nobody = pwd.getpwnam(user)
    mode = stat.S_IMODE(SCRIPT.stat().st_mode)
    assert mode & 0o005 == 0o005, "scripts/chatops-mailprog must be readable+executable by all"
    assert SCRIPT.read_text().startswith("#!/usr/bin/python3 -IS\n")
    tmp_path = public_tmp
    cwd = tmp_path / "log"
    cwd.mkdir(mode=0o755)
    spool = tmp_path / "spool"
    spool.mkdir()
    group = nobody.pw_gid
    os.chown(spool, 0, group)
    spool.chmod(0o2770)
    env = _neutral(dict(SLURM_ENV, CHATOPS_SPOOL_DIR=str(spool)))
    proc = run(["-s", SUBJECT, "bob"], env, cwd, user=user)
    assert (proc.returncode, proc.stderr) == (0, "")
    (path,) = list(spool.iterdir())
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (nobody.pw_uid, group, 0o660)
    # and a spool it may not write: exit 0, the reason on stderr
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o755)
    proc = run(["-s", SUBJECT, "bob"], dict(env, CHATOPS_SPOOL_DIR=str(closed)), cwd, user=user)
    assert proc.returncode == 0
    assert "Permission denied" in proc.stderr and list(closed.iterdir()) == []
    # a conf file it may not read (say 0600 root): said so, and the environment still counts
    conf = tmp_path / "mailprog.conf"
    conf.write_text(f"CHATOPS_EVENTS_TOKEN={TOKEN}\n")
    conf.chmod(0o600)
    proc = run(["-s", SUBJECT, "bob"], dict(env, CHATOPS_MAILPROG_CONF=str(conf)), cwd, user=user)
    assert proc.returncode == 0 and f"cannot read {conf}: PermissionError" in proc.stderr
    assert len(list(spool.iterdir())) == 2 and TOKEN not in proc.stderr


def test_hot_path_imports_only_the_standard_minimum(tmp_path: Path) -> None:
    code = (
        "import sys; sys.path.append(sys.argv[1]); import chatops.mailprog; "
        "print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run(
        ["/usr/bin/python3", "-I", "-S", "-c", code, str(ROOT)],
        env={},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    heavy = {"os", "json", "re", "typing", "collections", "socket", "http", "urllib", "datetime"}
    assert heavy.isdisjoint(out), heavy & set(out)
    assert not any(m.split(".")[0] in {"sqlalchemy", "flask", "dispatcher", "bot"} for m in out)


# --- HTTP mode ---------------------------------------------------------------------------------


class Intake:
    """A real local HTTP server standing in for the web service's Slurm event intake."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 204
        self.delay = 0.0
        intake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                intake.requests.append((self.path, dict(self.headers), body))
                time.sleep(intake.delay)
                self.send_response(intake.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slurm/events"
        serve_in_thread(self.server)


@pytest.fixture
def intake() -> Iterator[Intake]:
    server = Intake()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _http_env(spool: Path, url: str, token: str = TOKEN) -> dict[str, str]:
    return dict(
        SLURM_ENV,
        CHATOPS_SPOOL_DIR=str(spool),
        CHATOPS_EVENTS_URL=url,
        CHATOPS_EVENTS_TOKEN=token,
    )


def test_posts_the_event_with_the_token(intake: Intake, tmp_path: Path, cwd: Path) -> None:
    spool = tmp_path / "spool"
    proc = run(["-s", SUBJECT, "telegram:123"], _http_env(spool, intake.url), cwd)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert not spool.exists()
    ((path, headers, body),) = intake.requests
    assert path == "/slurm/events"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"
    event = json.loads(body)
    assert (event["version"], event["subject"], event["mail_user"]) == (1, SUBJECT, "telegram:123")
    assert event["argv"] == ["-s", SUBJECT, "telegram:123"] and event["env"] == SLURM_ENV
    assert NAME.match(event["id"] + ".json")
    assert parse_event(event).event_id == event["id"]


def test_url_and_token_from_conf_file(intake: Intake, tmp_path: Path, cwd: Path) -> None:
    conf = tmp_path / "mailprog.conf"
    conf.write_text(f"CHATOPS_EVENTS_URL={intake.url}\nCHATOPS_EVENTS_TOKEN='{TOKEN}'\n")
    proc = run(["-s", SUBJECT, "bob"], dict(SLURM_ENV, CHATOPS_MAILPROG_CONF=str(conf)), cwd)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert [h["Authorization"] for _, h, _ in intake.requests] == [f"Bearer {TOKEN}"]


def test_server_error_falls_back_to_the_spool(intake: Intake, tmp_path: Path, cwd: Path) -> None:
    intake.status = 500
    spool = tmp_path / "spool"
    proc = run(["-s", SUBJECT, "bob"], _http_env(spool, intake.url), cwd)
    assert proc.returncode == 0
    assert len(intake.requests) == 1
    assert [e["subject"] for e in spooled(spool)] == [SUBJECT]
    assert "HTTP 500" in proc.stderr and "spooling" in proc.stderr
    assert TOKEN not in proc.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_closed_port_falls_back_to_the_spool(tmp_path: Path, cwd: Path) -> None:
    spool = tmp_path / "spool"
    url = f"http://127.0.0.1:{_closed_port()}/slurm/events?key={TOKEN}"
    proc = run(["-s", SUBJECT, "bob"], _http_env(spool, url), cwd)
    assert proc.returncode == 0
    assert [e["subject"] for e in spooled(spool)] == [SUBJECT]
    assert "ConnectionRefusedError" in proc.stderr  # refused at once, not given up on later
    assert TOKEN not in proc.stderr  # neither the header nor the query string is logged


@pytest.mark.slow
def test_slow_server_is_given_up_on_after_the_deadline(
    intake: Intake, tmp_path: Path, cwd: Path
) -> None:
    intake.delay = 6
    spool = tmp_path / "spool"
    started = time.monotonic()
    proc = run(["-s", SUBJECT, "bob"], _http_env(spool, intake.url), cwd)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0
    # the 2 s default bounds the whole exchange: given up on before the server's 6 s are over
    assert 1.5 < elapsed < 5.5, elapsed
    (event,) = spooled(spool)
    assert event["subject"] == SUBJECT
    # the server did get it: the same id marks the spooled copy as a duplicate
    ((_, _, body),) = intake.requests
    assert json.loads(body)["id"] == event["id"]
    assert TOKEN not in proc.stderr


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "not a url", "http://"])
def test_bad_url_falls_back_to_the_spool(tmp_path: Path, cwd: Path, url: str) -> None:
    spool = tmp_path / "spool"
    proc = run(["-s", SUBJECT, "bob"], _http_env(spool, url), cwd)
    assert proc.returncode == 0 and len(spooled(spool)) == 1
    assert "failed" in proc.stderr and TOKEN not in proc.stderr


def test_token_unfit_for_a_header_is_not_sent_nor_logged(
    intake: Intake, tmp_path: Path, cwd: Path
) -> None:
    spool = tmp_path / "spool"
    token = f"{TOKEN}\r\nX-Evil: 1"
    proc = run(["-s", SUBJECT, "bob"], _http_env(spool, intake.url, token), cwd)
    assert proc.returncode == 0 and intake.requests == []
    assert len(spooled(spool)) == 1
    assert TOKEN not in proc.stderr and "token" in proc.stderr.lower()


def test_module_entry_point_returns_0() -> None:
    """The pip console-script route (``chatops.mailprog:main``) behaves the same."""
    code = "import sys, chatops.mailprog as m; sys.exit(m.main(['-s', 'x', 'y']) + 7)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=_neutral({"CHATOPS_SPOOL_DIR": "/dev/null/spool", "PYTHONPATH": str(ROOT)}),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 7 and "cannot spool" in proc.stderr


def test_two_writers_of_one_event_both_succeed(tmp_path: Path) -> None:
    """The web server spools an event whose POST timed out while the MailProg spools it too:
    each writer has its own temp file, neither gives up, and the event lands once, whole."""
    spool = tmp_path / "spool"
    rounds = 300
    failures: list[str] = []
    start = threading.Barrier(2)

    def writer(event_ids: list[str], data: list[bytes]) -> None:
        for event_id, body in zip(event_ids, data, strict=True):
            start.wait(timeout=30)
            try:
                spool_event(body, str(spool), event_id)
            except OSError as exc:
                failures.append(f"{event_id}: {exc}")

    ids = [f"{time.time_ns() + n}-4242-{n:08x}" for n in range(rounds)]
    bodies = [encode_event({"version": 1, "id": i, "argv": ["-s", SUBJECT, "bob"]})
              for i in ids]
    threads = [threading.Thread(target=writer, args=(ids, bodies)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    events = spooled(spool)  # asserts no temp file is left
    assert sorted(e["id"] for e in events) == sorted(ids)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_says_what_it_is_and_spools_nothing(tmp_path: Path, cwd: Path, flag: str) -> None:
    spool = tmp_path / "spool"
    proc = run([flag], _neutral({"CHATOPS_SPOOL_DIR": str(spool)}), cwd)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith("usage: chatops-mailprog -s SUBJECT MAIL_USER\n\nSlurm's "
                                  "MailProg (MailProg= in slurm.conf)")
    assert spooled(spool) == []
