#!/usr/bin/python3
"""Follow DEPLOY.md on this machine, in a scratch directory, and check that the result works.

    sudo /usr/bin/python3 scripts/deploy-check.py [--source REPO] [--keep]

It runs, with bash and as written, the blocks of DEPLOY.md marked ``<!-- deploy-check: NAME
-->`` — install, first-start, backup, retention, separate-units, upgrade — with these
differences, because this is a shared machine without systemd:

- The paths DEPLOY.md installs to (/opt/chatops, /etc/chatops, /var/lib/chatops, ...) are moved
  under a scratch root (/tmp/chatops-deploy-XXXX, removed at the end unless --keep), and port
  8080 becomes a free port. The account `chatops` is created as written (it stays: DEPLOY.md
  creates it only if it is missing).
- ``<this repository>`` is a bare copy of REPO's HEAD served by ``git daemon`` on 127.0.0.1:
  a fresh clone of what is committed (uncommitted changes are not part of it).
- Between install and first-start it makes the admin's edit of chatops.env: the moved paths.
- ``systemctl`` is this script: each unit file is read as systemd would (User=, Group=,
  WorkingDirectory=, Environment=, EnvironmentFile=, ExecStartPre=, ExecStart=, %i) and its
  ExecStart line is run by hand with that user and environment; stop sends SIGTERM to the main
  process, then SIGKILL to what is left after TimeoutStopSec. Sandboxing (ProtectSystem=,
  NoNewPrivileges=) is not applied.

After each block it checks what an admin would: /healthz answers, a chat command gets its
answer, the backups exist and are whole, the upgrade pulled a new commit and the units run it.
Standard library only; needs root, sudo, git (with git-daemon), make, curl, setpriv, network
access to PyPI.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
MOVED = ("/opt/chatops", "/etc/chatops", "/var/lib/chatops", "/var/spool/chatops",
         "/var/backups/chatops", "/etc/systemd/system", "/etc/cron.d")
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Failed(Exception):
    pass


# -- the scratch root ---------------------------------------------------------------------------

class Root:
    def __init__(self, path: Path, port: int):
        self.path = path
        self.port = port

    def moved(self, text: str) -> str:
        """DEPLOY.md's paths and port, moved into the scratch root."""
        for original in MOVED:
            text = re.sub(re.escape(original) + r"(?=[/\s'\"]|$)", str(self.path) + original,
                          text, flags=re.M)
        return text.replace("127.0.0.1:8080", f"127.0.0.1:{self.port}").replace(
            "--port 8080", f"--port {self.port}")

    def under(self, original: str) -> Path:
        return Path(self.moved(original))

    @property
    def units(self) -> Path:
        return self.path / "units"  # pid files and logs of the units run by hand


# -- systemd, by hand ---------------------------------------------------------------------------

def read_unit(root: Root, name: str) -> dict[str, list[str]]:
    base, _, instance = name.removesuffix(".service").partition("@")
    file = root.under("/etc/systemd/system") / (f"{base}@.service" if "@" in name
                                                else f"{base}.service")
    if not file.is_file():
        raise Failed(f"systemctl: unit {name} not found ({file})")
    keys: dict[str, list[str]] = {}
    section = ""
    for line in root.moved(file.read_text()).splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "Service":
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), []).append(value.strip().replace("%i", instance))
    return keys


def environment_file(root: Root, path: str) -> dict[str, str]:
    """systemd's EnvironmentFile= (KEY=value, comments, quotes), the paths in it moved."""
    optional = path.startswith("-")
    file = Path(path.lstrip("-"))
    if not file.exists() and optional:
        return {}
    values = {}
    for line in file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def unit_env(root: Root, keys: dict[str, list[str]]) -> dict[str, str]:
    user = keys.get("User", ["root"])[0]
    home = subprocess.run(["getent", "passwd", user], capture_output=True, text=True,
                          check=True).stdout.split(":")[5]
    env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", "USER": user, "LOGNAME": user,
           "HOME": home, "SHELL": "/usr/sbin/nologin"}
    for assignment in keys.get("Environment", []):
        for pair in shlex.split(assignment):
            key, _, value = pair.partition("=")
            env[key] = value
    for path in keys.get("EnvironmentFile", []):
        env.update(environment_file(root, path))
    return env


def as_user(keys: dict[str, list[str]], command: str) -> list[str]:
    user = keys.get("User", ["root"])[0]
    group = keys.get("Group", [user])[0]
    return ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups", "--",
            *shlex.split(command)]


def unit_start(root: Root, name: str) -> None:
    pid_file = root.units / f"{name}.pid"
    if pid_file.exists() and _alive(int(pid_file.read_text())):
        return
    keys = read_unit(root, name)
    env = unit_env(root, keys)
    cwd = keys.get("WorkingDirectory", ["/"])[0]
    log = open(root.units / f"{name}.log", "ab")
    for pre in keys.get("ExecStartPre", []):
        done = subprocess.run(as_user(keys, pre), env=env, cwd=cwd, stdout=log, stderr=log)
        if done.returncode != 0:
            raise Failed(f"systemctl: {name}: ExecStartPre={pre} exited {done.returncode}:\n"
                         + (root.units / f"{name}.log").read_text()[-3000:])
    process = subprocess.Popen(as_user(keys, keys["ExecStart"][0]), env=env, cwd=cwd,
                               stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    pid_file.write_text(str(process.pid))
    (root.units / f"{name}.timeout").write_text(keys.get("TimeoutStopSec", ["90"])[0])


def unit_stop(root: Root, name: str) -> None:
    pid_file = root.units / f"{name}.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    timeout = float((root.units / f"{name}.timeout").read_text())
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)  # KillMode=mixed: the main process first
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)  # whatever is left of the unit
    except ProcessLookupError:
        pass
    pid_file.unlink()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def running_units(root: Root) -> list[str]:
    return sorted(p.name.removesuffix(".pid") for p in root.units.glob("*.pid"))


def systemctl(root: Root, args: list[str]) -> int:
    """The subset of systemctl DEPLOY.md uses."""
    verb, rest = args[0], [a for a in args[1:] if not a.startswith("-")]
    now = "--now" in args
    names = [n if "." in n or "*" in n else f"{n}.service" for n in rest]
    if verb == "daemon-reload":
        return 0
    if verb in ("start", "restart") or (verb == "enable" and now):
        for name in names:
            if verb == "restart":
                unit_stop(root, name)
            unit_start(root, name)
        return 0
    if verb == "stop" or (verb == "disable" and now):
        for pattern in names:
            for name in running_units(root):
                if fnmatch.fnmatch(name, pattern):
                    unit_stop(root, name)
        return 0
    if verb in ("enable", "disable"):
        return 0
    raise Failed(f"systemctl {verb}: not emulated here")


# -- DEPLOY.md's blocks -------------------------------------------------------------------------

def blocks(deploy_md: str) -> dict[str, str]:
    found = {}
    for match in re.finditer(r"<!-- deploy-check: ([\w-]+) -->\n```sh\n(.*?)```", deploy_md,
                             re.S):
        found[match.group(1)] = match.group(2)
    return found


def run_block(root: Root, name: str, block: str, repository: str) -> str:
    script = root.moved(block).replace("<this repository>", repository)
    shim = f"{sys.executable} {HERE} --root {root.path} --port {root.port} systemctl"
    script = re.sub(r"(?<![\w/-])systemctl(?=\s)", shim, script)
    print(f"--- deploy-check: {name}\n{script}", flush=True)
    env = {"PATH": SYSTEMD_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
    # One terminal session: each block starts where the one before left the admin.
    where = root.path / ".cwd"
    cwd = where.read_text().strip() if where.exists() else str(root.path)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c",
                           f"cd {shlex.quote(cwd)}\n{script}\npwd > {where}"],
                          env=env, capture_output=True, text=True, timeout=1800)
    print(done.stdout + done.stderr, flush=True)
    if done.returncode != 0:
        raise Failed(f"block {name} exited {done.returncode}")
    return done.stdout + done.stderr


def admin_edits_settings(root: Root) -> None:
    """What DEPLOY.md asks between install and first-start: settings for this host."""
    env_file = root.under("/etc/chatops") / "chatops.env"
    env_file.write_text(root.moved(env_file.read_text()))


def chat_as_service(root: Root, text: str) -> str:
    chatops = root.under("/opt/chatops") / ".venv/bin/chatops"
    env_file = root.under("/etc/chatops") / "chatops.env"
    done = subprocess.run(["sudo", "-u", "chatops", str(chatops), "--env-file", str(env_file),
                           "chat", text], capture_output=True, text=True, timeout=120,
                          cwd=root.under("/opt/chatops"))
    return done.stdout + done.stderr


def healthy(root: Root, timeout: float = 60) -> dict:
    import json

    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{root.port}/healthz", timeout=5) as r:
                return json.loads(r.read())
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise Failed(f"/healthz did not answer 200 within {timeout:g} s: {last}")


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Failed(what)
    print(f"ok: {what}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check(source: Path, keep: bool) -> None:
    for tool in ("sudo", "git", "make", "curl", "setpriv", "getent"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            raise Failed(f"{tool} is not installed (scripts/test-setup.sh installs sudo)")
    root = Root(Path(tempfile.mkdtemp(prefix="chatops-deploy-")), free_port())
    root.path.chmod(0o755)  # the service account walks through it
    root.units.mkdir()
    for system_dir in ("/opt", "/etc/systemd/system", "/etc/cron.d", "/var/lib", "/var/spool",
                       "/var/backups"):  # what a Debian host has already
        (root.path / system_dir.lstrip("/")).mkdir(mode=0o755, parents=True, exist_ok=True)
    daemon = None
    try:
        # <this repository>: a fresh clone of what is committed, over git://
        bare = root.path / "git" / "chatops.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True)
        git_port = free_port()
        daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all",
                                   f"--base-path={bare.parent}", "--listen=127.0.0.1",
                                   f"--port={git_port}"], stderr=subprocess.DEVNULL)
        repository = f"git://127.0.0.1:{git_port}/chatops.git"
        deploy = blocks((source / "DEPLOY.md").read_text())
        missing = {"install", "first-start", "backup", "retention", "separate-units",
                   "upgrade"} - set(deploy)
        expect(not missing, f"DEPLOY.md marks every block this script follows {sorted(missing)}")

        run_block(root, "install", deploy["install"], repository)
        installed = subprocess.run([str(root.under("/opt/chatops") / ".venv/bin/pip"), "list"],
                                   capture_output=True, text=True, check=True).stdout
        expect("pytest" not in installed and "playwright" not in installed,
               "the production install has none of the test tools")
        admin_edits_settings(root)
        out = run_block(root, "first-start", deploy["first-start"], repository)
        expect(re.search(r"created the database sqlite:///\S+ \(schema \d+\)", out) is not None,
               "db upgrade says it created the database")
        expect('"status": "ok"' in out or '"status":"ok"' in out, "/healthz says ok")
        expect("Hello admin" in out, "a chat command gets its job's answer (chatops run)")

        out = run_block(root, "backup", deploy["backup"], repository)
        backups = root.under("/var/backups/chatops")
        [database] = backups.glob("chatops-*.db")
        with sqlite3.connect(database) as copy:
            expect(copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
                   and copy.execute("SELECT count(*) FROM jobs").fetchone()[0] >= 1,
                   "the online backup is whole and holds the jobs")
        expect(len(list(backups.glob("logs-*.tar.gz"))) == 1, "the logs are archived")

        out = run_block(root, "retention", deploy["retention"], repository)
        expect("Would remove the logs of 0 jobs" in out, "prune --dry-run keeps recent jobs")
        expect((root.under("/etc/cron.d") / "chatops-prune").is_file(), "prune runs daily")

        run_block(root, "separate-units", deploy["separate-units"], repository)
        systemctl(root, ["enable", "--now", "chatops-bot@console"])
        expect(running_units(root) == ["chatops-bot@console.service",
                                       "chatops-dispatcher.service", "chatops-web.service"],
               "the dispatcher, web and bot units run instead of the all-in-one")
        healthy(root)
        expect("Hello units" in chat_as_service(root, "example say hello units"),
               "a chat command gets its answer (separate units)")

        # A new commit upstream, for the upgrade to pull.
        head = subprocess.run(["git", "-C", str(bare), "commit-tree", "HEAD^{tree}", "-p",
                               "HEAD", "-m", "deploy-check: an upgrade"], capture_output=True,
                              text=True, check=True,
                              env={**os.environ, "GIT_AUTHOR_NAME": "deploy-check",
                                   "GIT_AUTHOR_EMAIL": "deploy-check@localhost",
                                   "GIT_COMMITTER_NAME": "deploy-check",
                                   "GIT_COMMITTER_EMAIL": "deploy-check@localhost"}
                              ).stdout.strip()
        branch = subprocess.run(["git", "-C", str(bare), "symbolic-ref", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        subprocess.run(["git", "-C", str(bare), "update-ref", branch, head], check=True)
        run_block(root, "upgrade", deploy["upgrade"], repository)
        deployed = subprocess.run(["sudo", "-u", "chatops", "git", "-C",
                                   str(root.under("/opt/chatops")), "rev-parse", "HEAD"],
                                  capture_output=True, text=True, check=True).stdout.strip()
        expect(deployed == head, "the upgrade pulled the new commit")
        healthy(root)
        expect("Hello upgraded" in chat_as_service(root, "example say hello upgraded"),
               "a chat command gets its answer after the upgrade")
        print("deploy-check: DEPLOY.md works on this machine", flush=True)
    except Failed:
        for log in sorted(root.units.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}", file=sys.stderr)
        raise
    finally:
        systemctl(root, ["stop", "*"])
        if daemon is not None:
            daemon.terminate()
            daemon.wait(10)
        if keep:
            print(f"kept {root.path}", flush=True)
        else:
            subprocess.run(["rm", "-rf", str(root.path)], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=REPO, help="the repository (its HEAD)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch root")
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)  # for the systemctl shim
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        if args.rest[:1] == ["systemctl"]:
            return systemctl(Root(args.root, args.port), args.rest[1:])
        if os.geteuid() != 0:
            raise Failed("run it as root: it creates the account chatops and runs as it")
        check(args.source.resolve(), args.keep)
        return 0
    except Failed as exc:
        print(f"deploy-check: FAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
