"""Remote jobs over the pooled SSH connection, end to end: chat -> Dispatcher -> sshd -> report.

Against the live test cluster (scripts/test-cluster.sh up), as the unprivileged user alice.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatops.slurm.client import SlurmClient
from tests.support.remote import Harness, cluster_env, cluster_settings
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # needs the test cluster, Synapse or a browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def namespace(cluster: str | None) -> dict:
    jobs = {
        "echo": {"run_args_template": "echo {text}", "report_stdout": True},
        "exit": {"run_args_template": "echo to-out; echo to-err >&2; exit {code}"},
        "hang": {"run_args_template": "sleep {seconds}; echo woke", "timeout": 2},
        "hangs": {"run_args_template": "sleep {seconds}; echo woke", "timeout": 600},
        # the token's value must reach the job, yet appear in no command line on the cluster
        "token": {"run_args_template": 'echo "token=$CHATOPS_TEST_TOKEN"; '
                                       'ps -eo args | grep -cF -f <(printenv CHATOPS_TEST_TOKEN)'
                                       ' || true', "report_stdout": True,
                  "env": ["CHATOPS_TEST_TOKEN"]},
        "notoken": {"run_args_template": 'echo "token=${{CHATOPS_TEST_TOKEN:-unset}}"',
                    "report_stdout": True},
    }
    commands = [{"command": f"{name} [{arg}]", "help": name, "action": "schedule_job",
                 "job_type": name}
                for name, arg in (("echo", "text"), ("exit", "code"), ("hang", "seconds"),
                                  ("hangs", "seconds"))]
    commands += [{"command": name, "help": name, "action": "schedule_job", "job_type": name}
                 for name in ("token", "notoken")]
    return {"jobs": jobs, "slack": commands, **({"cluster": cluster} if cluster else {})}


@pytest.fixture(scope="module")
def listener_that_never_answers() -> Iterator[int]:
    """A TCP port that accepts connections but never says a word (an SSH banner timeout)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(50)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(scope="module")
def wrong_known_hosts(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A known_hosts naming the test host with some other ed25519 key."""
    env = cluster_env()
    folder = tmp_path_factory.mktemp("keys")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "k")],
                   check=True)
    kind, blob = (folder / "k.pub").read_text().split()[:2]
    host = f"[{env['CHATOPS_TEST_SSH_HOST']}]:{env['CHATOPS_TEST_SSH_PORT']}"
    (folder / "known_hosts").write_text(f"{host} {kind} {blob}\n")
    return str(folder / "known_hosts")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, listener_that_never_answers: int,
            wrong_known_hosts: str) -> Iterator[Harness]:
    env = cluster_env()
    home = tmp_path_factory.mktemp("ssh-home")
    empty_known_hosts = home / "empty_known_hosts"
    empty_known_hosts.write_text("")
    clusters = {
        "test": cluster_settings(env),
        "down": cluster_settings(env, port=free_port()),
        "silent": cluster_settings(env, port=listener_that_never_answers, connect_timeout=3),
        "wrongkey": cluster_settings(env, known_hosts=wrong_known_hosts),
        "unknownkey": cluster_settings(env, known_hosts=str(empty_known_hosts)),
        "viajump": cluster_settings(env, jump_host="test"),
        "noisy": cluster_settings(env, user=env["CHATOPS_TEST_SSH_NOISY_USER"]),
    }
    raw = {name: namespace(name) for name in clusters}
    raw["here"] = namespace(None)
    h = Harness(home, raw, clusters, CHATOPS_TEST_TOKEN=TOKEN)
    yield h
    h.stop()


TOKEN = "tok-" + uuid.uuid4().hex  # a secret a job lists in its `env`


def remote(h: Harness, command: str) -> str:
    return h.remote.pool.connection("test").exec(command).stdout


def test_hostile_arguments_are_echoed_literally_on_the_cluster(harness: Harness) -> None:
    marker = f"/tmp/chatops-pwned-{uuid.uuid4().hex[:8]}"
    hostile = f"$(touch {marker}) `touch {marker}` ; rm -rf ~ && echo <poem> | cat"
    _, report = harness.run(f"test echo {hostile}")
    assert report == hostile
    assert remote(harness, f"test -e {marker} && echo exists || echo absent") == "absent\n"
    assert remote(harness, "test -d ~ && echo home-intact") == "home-intact\n"


def test_exit_code_stdout_and_stderr_are_captured(harness: Harness) -> None:
    job_id, report = harness.run("test exit 3")
    assert report == (f"`test_exit` (job {job_id}) failed with exit code 3.\n"
                      "Last lines of stderr:\n```\nto-err\n```\n"
                      f"See the logs with `logs {job_id}` (stdout) or `logs {job_id} stderr`.")
    log_dir = harness.settings.job_log_dir("test", "test_exit", job_id)
    assert (log_dir / "stdout").read_text() == "to-out\n"
    assert (log_dir / "stderr").read_text() == "to-err\n"
    job_id, report = harness.run("test exit 0")
    assert report == f"`test_exit` (job {job_id}) succeeded."


def remote_processes(h: Harness, pattern: str) -> str:
    # [s]leep: the pattern does not match pgrep's own command line
    return remote(h, f"pgrep -f '[s]{pattern[1:]}' || true")


def test_timeout_kills_the_remote_process_group(harness: Harness) -> None:
    seconds = f"1{uuid.uuid4().int % 10**6:06d}.5"
    job_id, report = harness.run(f"test hang {seconds}")
    assert report == (f"`test_hang` (job {job_id}) timed out after 2 s and was stopped.\n"
                      f"See the logs with `logs {job_id}` (stdout) or `logs {job_id} stderr`.")
    wait_until(lambda: remote_processes(harness, f"sleep {seconds}") == "", 10,
             "the remote sleep to be gone")
    assert harness.queue.get(job_id).state == "timed_out"


def test_cancel_stops_a_running_remote_job(harness: Harness) -> None:
    seconds = f"2{uuid.uuid4().int % 10**6:06d}.5"
    response, channel = harness.chat(f"test hangs {seconds}")
    job_id = response.job_id
    wait_until(lambda: remote_processes(harness, f"sleep {seconds}"), 10, "the remote sleep")
    cancel, _ = harness.chat(f"cancel {job_id}")
    assert [r.text for r in cancel.replies] == [
        f"Stopping job {job_id} (`test_hangs`); its report will follow."]
    assert harness.replies(channel, 1, 20) == [
        f"`test_hangs` (job {job_id}) was cancelled.\n"
        f"See the logs with `logs {job_id}` (stdout) or `logs {job_id} stderr`."]
    wait_until(lambda: remote_processes(harness, f"sleep {seconds}") == "", 10,
             "the remote sleep to be gone")


def test_a_jobs_env_reaches_the_cluster_but_no_command_line(harness: Harness) -> None:
    assert harness.run("test token")[1] == f"token={TOKEN}\n0"
    assert harness.run("test notoken")[1] == "token=unset"


def test_a_greeting_in_the_accounts_bashrc_stays_out_of_every_output(harness: Harness) -> None:
    """carol's .bashrc prints a greeting on stdout and a module message on stderr, for every
    command sshd runs and in every login shell, as some sites' do."""
    assert harness.run("noisy echo hello")[1] == "hello"
    job_id, _ = harness.run("noisy exit 3")
    log_dir = harness.settings.job_log_dir("noisy", "noisy_exit", job_id)
    assert (log_dir / "stdout").read_text() == "to-out\n"
    assert (log_dir / "stderr").read_text() == "to-err\n"
    connection = harness.remote.pool.connection("noisy")
    connection.close()  # the next command starts a new command shell
    assert connection.run(["echo", "first"], 10).stdout == "first\n"
    assert connection.run(["echo", "second"], 10).stdout == "second\n"
    result = connection.exec("echo plain; echo quiet >&2")
    assert (result.stdout, result.stderr) == ("plain\n", "quiet\n")
    assert SlurmClient(connection.run).sinfo()


def test_a_dropped_connection_is_recovered_on_the_next_job(harness: Harness) -> None:
    harness.run("test echo before")
    connection = harness.remote.pool.connection("test")
    before = connection.connects
    transport = connection.transport()
    transport.sock.shutdown(socket.SHUT_RDWR)  # the network drops under the open transport
    wait_until(lambda: not transport.is_active(), 10, "paramiko to notice the drop")
    job_id, report = harness.run("test echo after the drop")
    assert report == "after the drop"
    assert connection.connects == before + 1


def test_a_cluster_behind_a_jump_host(harness: Harness) -> None:
    job_id, report = harness.run("viajump echo through the gateway")
    assert report == "through the gateway"
    assert harness.remote.pool.connection("viajump").connects == 1


def test_jobs_share_one_connection(harness: Harness) -> None:
    connection = harness.remote.pool.connection("test")
    harness.run("test echo warm")
    before = connection.connects
    channels = [harness.chat(f"test echo parallel {i}")[1] for i in range(8)]
    assert sorted(harness.replies(c)[0] for c in channels) == [
        f"parallel {i}" for i in range(8)]
    assert connection.connects == before


def test_an_unreachable_cluster_fails_cleanly(harness: Harness) -> None:
    job_id, report = harness.run("down echo hi")
    assert report == (f"`down_echo` (job {job_id}) failed: cluster down unreachable: "
                      "connection refused.")


def test_a_hanging_cluster_never_blocks_local_or_other_jobs(harness: Harness) -> None:
    started = time.monotonic()
    _, slow_channel = harness.chat("silent echo hi")
    local_id, local_report = harness.run("here echo local")
    remote_id, remote_report = harness.run("test echo remote")
    assert (local_report, remote_report) == ("local", "remote")
    assert time.monotonic() - started < 2.5  # the silent cluster's connect takes 3 s
    [slow] = harness.replies(slow_channel, 1, 20)
    port = harness.config.clusters["silent"].port
    assert slow.endswith(") failed: cluster silent unreachable: no SSH handshake from "
                         f"127.0.0.1:{port} within 3 s."), slow


def test_unknown_and_changed_host_keys_are_rejected(harness: Harness) -> None:
    job_id, report = harness.run("unknownkey echo hi")
    env = cluster_env()
    host = f"[{env['CHATOPS_TEST_SSH_HOST']}]:{env['CHATOPS_TEST_SSH_PORT']}"
    assert report == (f"`unknownkey_echo` (job {job_id}) failed: cluster unknownkey "
                      f"unreachable: Server '{host}' not found in known_hosts.")
    job_id, report = harness.run("wrongkey echo hi")
    server_key = harness.remote.pool.connection("test").transport().get_remote_server_key()
    assert report == (f"`wrongkey_echo` (job {job_id}) failed: cluster wrongkey unreachable: "
                      f"the host key of {env['CHATOPS_TEST_SSH_HOST']} (ssh-ed25519 "
                      f"{server_key.fingerprint}) does not match known_hosts: refusing to "
                      "connect.")


def test_a_failed_connect_backs_off(harness: Harness) -> None:
    harness.run("down echo first")
    job_id, report = harness.run("down echo again")  # within the backoff: no new attempt
    assert report.startswith(f"`down_echo` (job {job_id}) failed: cluster down unreachable: "
                             "connection refused (next attempt in ")


def test_remote_output_is_size_capped(tmp_path: Path) -> None:
    env = cluster_env()
    raw = {"test": namespace("test")}
    raw["test"]["jobs"]["big"] = {"run_args_template": "head -c {n} /dev/zero | tr '\\0' x"}
    raw["test"]["slack"].append({"command": "big [n]", "help": "big", "action": "schedule_job",
                                 "job_type": "big"})
    h = Harness(tmp_path / "home", raw, {"test": cluster_settings(env)},
                CHATOPS_REMOTE_LOG_LIMIT="1000")
    try:
        job_id, report = h.run("test big 5000")
        assert report == f"`test_big` (job {job_id}) succeeded."
        stdout = (h.settings.job_log_dir("test", "test_big", job_id) / "stdout").read_text()
        assert stdout == "x" * 1000 + "\n[chatops: output cut at 1000 bytes]\n"
    finally:
        h.stop()


def test_slurm_commands_run_through_the_command_shell(harness: Harness) -> None:
    connection = harness.remote.pool.connection("test")
    hostile = ["echo", "$(touch /tmp/chatops-pwned)", "; rm -rf ~", "it's", "a\nb"]
    expected = "$(touch /tmp/chatops-pwned) ; rm -rf ~ it's a\nb\n"
    assert connection.run(hostile, 10).stdout == expected
    result = connection.run(["sh", "-c", "echo out; echo err >&2; printf tail; exit 4"], 10)
    assert (result.returncode, result.stdout, result.stderr) == (4, "out\ntail", "err")
    assert connection.run(["cat"], 10).stdout == ""  # stdin is empty, as on an exec channel
    with pytest.raises(TimeoutError):
        connection.run(["sleep", "5"], 0.5)
    assert connection.run(["echo", "next"], 10).stdout == "next\n"  # a fresh shell


def test_a_busy_command_shell_never_holds_up_other_commands(harness: Harness) -> None:
    connection = harness.remote.pool.connection("test")
    slow = threading.Thread(target=connection.run, args=(["sleep", "2"], 10))
    slow.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert connection.run(["echo", "quick"], 10).stdout == "quick\n"  # on an exec channel
    assert time.monotonic() - started < 1.5
    slow.join()
