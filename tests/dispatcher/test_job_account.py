"""Jobs run as the job account (CHATOPS_JOB_USER): what a job can reach of the service, that
every chatops process keeps its environment to itself, and that jobs are still stopped (cancel,
timeout, a dead dispatcher's leftovers). Issue 11, item 1.

Needs root and the accounts chatops-job and chatops-svc, which scripts/test-setup.sh creates.
The homes here are 0711 and under /tmp, as a careless site might have them: what keeps a job
out is then the files' own modes and the processes' own settings, not a closed folder.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import tempfile
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatops.settings import SetupError, load_settings
from tests.dispatcher.test_loop import background_chat, job_id_of, job_pid, pid_alive, wait_listed
from tests.support.cli import Chatops, spine_env
from tests.support.notify import free_port
from tests.support.require import require
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # real processes under several accounts

JOB, SERVICE = "chatops-job", "chatops-svc"
SECRET = f"secret-{uuid.uuid4().hex}"  # a service secret (and, distinct, a job's own)
JOB_SECRET = f"job-secret-{uuid.uuid4().hex}"
WEB_TOKEN = f"web-token-{uuid.uuid4().hex}"
AS_SERVICE = ("setpriv", f"--reuid={SERVICE}", f"--regid={SERVICE}", "--clear-groups")
# What systemd's AmbientCapabilities=CAP_SETUID CAP_SETGID CAP_KILL gives a non-root dispatcher.
WITH_CAPABILITIES = (*AS_SERVICE, "--inh-caps=+setuid,+setgid,+kill",
                     "--ambient-caps=+setuid,+setgid,+kill")


def need_accounts() -> None:
    for name in (JOB, SERVICE):
        try:
            pwd.getpwnam(name)
        except KeyError:
            require(False, f"the account {name}", "scripts/test-setup.sh")


@pytest.fixture
def home() -> Iterator[Path]:
    need_accounts()
    require(os.geteuid() == 0, "root (the dispatcher starts as root to run jobs as another "
                               "account)")
    path = Path(tempfile.mkdtemp(prefix="chatops-job-test-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


Make = Callable[..., Chatops]


@pytest.fixture
def chatops_in(home: Path) -> Iterator[Make]:
    """Makes the `chatops` commands of ``home``; what they started is stopped at the end."""
    made: list[Chatops] = []

    def make(env: dict[str, str], prefix: tuple[str, ...] = ()) -> Chatops:
        made.append(Chatops(home, env, prefix))
        return made[-1]

    yield make
    for runner in made:
        runner.stop_all()


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))


def write_env_file(home: Path, group: str) -> None:
    """The env file, as DEPLOY.md has it: 0640 root:<service group>."""
    path = home / "chatops.env"
    path.write_text(f"GITHUB_WEBHOOK_SECRET={SECRET}\n")
    os.chown(path, 0, pwd.getpwnam(group).pw_gid)
    path.chmod(0o640)


def started(chatops: Chatops, what: str) -> None:
    try:
        wait_until(lambda: what in chatops.log_text(), 60, f"{what!r} in the logs")
    except AssertionError as missing:  # say what the service said instead
        raise AssertionError(f"{missing}; the logs:\n{chatops.log_text()}") from None


def another_jobs_log(chatops: Chatops) -> Path:
    job_id = job_id_of(chatops.chat("tests echo private words"))
    return chatops.home / "logs/tests/tests_echo" / f"{job_id}.stdout"


def test_a_job_under_the_job_account_reaches_nothing_of_the_service(
        home: Path, chatops_in: Make) -> None:
    chatops = chatops_in(spine_env(home, CHATOPS_JOB_USER=JOB, CHATOPS_SERVICE_USER=SERVICE,
                                      GITHUB_WEBHOOK_SECRET=SECRET, CHATOPS_WEB_TOKEN=WEB_TOKEN,
                                      CHATOPS_TEST_VISIBLE=JOB_SECRET))
    chatops("db", "upgrade", check=True)
    write_env_file(home, SERVICE)
    port = free_port()
    run = chatops.start("run", "--port", str(port))
    started(chatops, "chatops is running")
    started(chatops, "local jobs run as chatops-job")
    [web] = Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split()
    assert (uid_of(run.pid), uid_of(int(web))) == (0, pwd.getpwnam(SERVICE).pw_uid)
    log = another_jobs_log(chatops)
    assert log.read_text() == "private words\n"
    dashboard = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    dashboard.open(f"http://127.0.0.1:{port}/login?token={WEB_TOKEN}")
    job_id = log.name.split(".")[0]  # the log that root's dispatcher wrote, served by chatops-svc
    page = dashboard.open(f"http://127.0.0.1:{port}/jobs/{job_id}/stdout")
    assert page.read() == b"private words\n"

    result = chatops.chat(f"tests probe {home} {log} {run.pid} {web}")
    assert result.stdout == (
        "read the parent's environ: refused\n"
        "open the parent's memory: refused\n"
        f"read the environ of chatops process {run.pid}: refused\n"
        f"read the environ of chatops process {web}: refused\n"
        "read chatops.db: refused\n"
        "write chatops.db: refused\n"
        "read the env file: refused\n"
        "list another job's log folder: refused\n"
        "read another job's log: refused\n"
        "write into the logs: refused\n"
        "write into the workspace: refused\n"
        "write CHATOPS_WRITEABLE_DIR: allowed\n"
        "CapEff:\t0000000000000000\n"
        "runs as chatops-job\n")
    # the values its `env` lists, and nothing else of the service's
    env = chatops.chat("tests env").stdout
    assert f"CHATOPS_TEST_VISIBLE={JOB_SECRET}" in env and "USER=chatops-job" in env
    assert SECRET not in env


def test_without_a_job_account_a_job_still_cannot_read_the_services_environment(
        home: Path, chatops_in: Make) -> None:
    service = pwd.getpwnam(SERVICE)
    os.chown(home, service.pw_uid, service.pw_gid)
    chatops = chatops_in(spine_env(home, GITHUB_WEBHOOK_SECRET=SECRET), prefix=AS_SERVICE)
    chatops("db", "upgrade", check=True)
    dispatcher = chatops.start_dispatcher()
    web = chatops.start("web", "--port", str(free_port()))
    started(chatops, "http://127.0.0.1")
    assert ("CHATOPS_JOB_USER is not set: local jobs run as chatops-svc, the service's own "
            "account, and can read everything chatops-svc can") in chatops.log_text()
    log = another_jobs_log(chatops)

    lines = chatops.chat(f"tests probe {home} {log} {dispatcher.pid} {web.pid}").stdout
    assert lines.splitlines()[:4] == [
        "read the parent's environ: refused",  # the same account: refused by the prctl alone
        "open the parent's memory: refused",
        f"read the environ of chatops process {dispatcher.pid}: refused",
        f"read the environ of chatops process {web.pid}: refused"]
    assert lines.splitlines()[-1] == "runs as chatops-svc"


def test_jobs_under_the_job_account_are_cancelled_timed_out_and_cleaned_up(
        home: Path, chatops_in: Make) -> None:
    chatops = chatops_in(spine_env(home, CHATOPS_JOB_USER=JOB))
    chatops("db", "upgrade", check=True)
    dispatcher = chatops.start_dispatcher()
    job_uid = pwd.getpwnam(JOB).pw_uid

    marker = home / "writeable/child"  # the job writes there, as the job account
    timed_out = chatops.chat(f"tests slow {marker}")
    assert "timed out after 2 s and was stopped" in timed_out.stdout
    child = int(marker.read_text().split()[1])
    wait_until(lambda: not pid_alive(child), 10, "the timed-out job's grandchild to be gone")

    waiter = background_chat(chatops, "tests sleep 100")
    job_id = int(wait_listed(chatops, r"^\s+(\d+)\s+running\s+tests_sleep").group(1))
    pid = job_pid(chatops, job_id)
    assert uid_of(pid) == job_uid
    assert chatops.chat(f"cancel {job_id}", user="bob").returncode == 0  # bob: an admin
    out, _ = waiter.communicate(timeout=20)
    assert f"`tests_sleep` (job {job_id}) was cancelled" in out
    wait_until(lambda: not pid_alive(pid), 10, "the cancelled job to be gone")

    waiter = background_chat(chatops, "tests sleep 100")
    job_id = int(wait_listed(chatops, r"^\s+(\d+)\s+running\s+tests_sleep").group(1))
    pid = job_pid(chatops, job_id)
    os.kill(dispatcher.pid, signal.SIGKILL)
    dispatcher.wait()
    assert pid_alive(pid) and uid_of(pid) == job_uid  # left behind, as the job account
    chatops.start_dispatcher()
    out, _ = waiter.communicate(timeout=30)
    assert f"`tests_sleep` (job {job_id}) was lost" in out
    wait_until(lambda: not pid_alive(pid), 10, "the lost job's process group to be killed")


def test_a_dispatcher_with_only_setuid_setgid_and_kill_runs_jobs_as_the_job_account(
        home: Path, chatops_in: Make) -> None:
    service, job = pwd.getpwnam(SERVICE), pwd.getpwnam(JOB)
    os.chown(home, service.pw_uid, service.pw_gid)
    writeable = home / "writeable"  # DEPLOY.md: made for the job account by the admin
    writeable.mkdir(mode=0o700)
    os.chown(writeable, job.pw_uid, job.pw_gid)
    chatops = chatops_in(spine_env(home, CHATOPS_JOB_USER=JOB, GITHUB_WEBHOOK_SECRET=SECRET),
                      prefix=WITH_CAPABILITIES)
    chatops("db", "upgrade", check=True)
    dispatcher = chatops.start_dispatcher()
    status = Path(f"/proc/{dispatcher.pid}/status").read_text()
    assert re.search(r"^CapEff:\s+00000000000000e0$", status, re.M)  # KILL, SETGID, SETUID
    log = another_jobs_log(chatops)

    lines = chatops.chat(f"tests probe {home} {log} {dispatcher.pid}").stdout.splitlines()
    assert lines[0] == "read the parent's environ: refused"
    assert "read chatops.db: refused" in lines and "read another job's log: refused" in lines
    assert lines[-2:] == ["CapEff:\t0000000000000000", "runs as chatops-job"]

    waiter = background_chat(chatops, "tests sleep 100")
    job_id = int(wait_listed(chatops, r"^\s+(\d+)\s+running\s+tests_sleep").group(1))
    pid = job_pid(chatops, job_id)
    chatops.chat(f"cancel {job_id}", user="bob")
    assert f"(job {job_id}) was cancelled" in waiter.communicate(timeout=20)[0]
    wait_until(lambda: not pid_alive(pid), 10, "the cancelled job to be gone")


def test_a_dispatcher_that_cannot_switch_accounts_refuses_to_start(
        home: Path, chatops_in: Make) -> None:
    service = pwd.getpwnam(SERVICE)
    os.chown(home, service.pw_uid, service.pw_gid)
    chatops = chatops_in(spine_env(home, CHATOPS_JOB_USER=JOB), prefix=AS_SERVICE)
    chatops("db", "upgrade", check=True)
    result = chatops("dispatcher", timeout=30)
    assert result.returncode == 3
    assert ("CHATOPS_JOB_USER=chatops-job, but this process (chatops-svc) cannot start jobs as "
            "another account and stop them: it lacks CAP_KILL, CAP_SETGID, CAP_SETUID. Run the "
            "dispatcher as root, or give it exactly CAP_SETUID, CAP_SETGID and CAP_KILL"
            ) in result.stderr


def test_config_check_says_loudly_when_there_is_no_job_account(chatops: Chatops) -> None:
    need_accounts()
    without = chatops("config", "check")
    assert without.returncode == 0
    assert without.stderr.startswith("WARNING: CHATOPS_JOB_USER is not set")
    assert ("Create a job account (`useradd --system --no-create-home --shell /usr/sbin/nologin "
            "chatops-job`)") in without.stderr
    chatops.env["CHATOPS_JOB_USER"] = "nobody-here"
    missing = chatops("config", "check")
    assert missing.returncode == 3  # a setup problem
    assert "CHATOPS_JOB_USER=nobody-here: there is no such account on this host" in missing.stderr
    chatops.env["CHATOPS_JOB_USER"] = JOB
    assert "local jobs run as: chatops-job" in chatops("config", "check").stdout


def test_secrets_from_credential_files_reach_the_jobs_that_list_them(
        chatops: Chatops, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"  # as systemd's LoadCredential= makes it
    credentials.mkdir(mode=0o700)
    (credentials / "CHATOPS_TEST_VISIBLE").write_text(JOB_SECRET + "\n")
    (tmp_path / "github-secret").write_text(SECRET)
    chatops.env.update(CREDENTIALS_DIRECTORY=str(credentials),
                       GITHUB_WEBHOOK_SECRET_FILE=str(tmp_path / "github-secret"))
    chatops.start_dispatcher()
    env = chatops.chat("tests env").stdout
    assert f"CHATOPS_TEST_VISIBLE={JOB_SECRET}\n" in env and SECRET not in env
    assert load_settings(chatops.env).secret("GITHUB_WEBHOOK_SECRET") == SECRET

    chatops.env["GITHUB_WEBHOOK_SECRET"] = "also-in-the-environment"
    twice = chatops("jobs", "list")
    assert twice.returncode == 3
    assert ("GITHUB_WEBHOOK_SECRET is set in the environment and in GITHUB_WEBHOOK_SECRET_FILE: "
            "keep one") in twice.stderr
    with pytest.raises(SetupError, match="cannot read the credential file /nonexistent"):
        load_settings({"SLACK_BOT_TOKEN_FILE": "/nonexistent"})
    assert "SSL_CERT" not in load_settings({"SSL_CERT_FILE": "/nonexistent"}).environ
