"""``chatops clusters check`` against the real test cluster and a closed port, and ``chatops
config check`` on a cluster's missing or unreadable files: the real command, as processes."""

from __future__ import annotations

import json
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import Chatops, spine_env
from tests.support.remote import cluster_env, cluster_settings

pytestmark = pytest.mark.slow  # the test cluster's sshd, and the CLI as processes


def write_config(path: Path, clusters: dict) -> Path:
    path.write_text(f"import json\nclusters = json.loads({json.dumps(json.dumps(clusters))})\n"
                    "raw_config = {}\n")
    return path


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_clusters_check_runs_sinfo_on_each_cluster(tmp_path: Path, closed_port: int) -> None:
    env = cluster_env()
    good = cluster_settings(env)
    config = write_config(tmp_path / "job_configs.py", {
        "test": good, "closed": {**good, "port": closed_port, "connect_timeout": 3}})
    chatops = Chatops(tmp_path, spine_env(tmp_path, CHATOPS_CONFIG=str(config)))

    result = chatops("clusters", "check", timeout=60)
    assert result.returncode == 1, result.stderr
    where = f"alice@127.0.0.1:{env['CHATOPS_TEST_SSH_PORT']}"
    lines = result.stdout.splitlines()
    assert re.fullmatch(rf"test: OK \({where}\): connected and ran `sinfo` in \d+ ms",
                        lines[0]), result.stdout
    assert lines[1].split() == ["PARTITION", "AVAIL", "TIMELIMIT", "NODES(A/I/O/T)", "NODELIST"]
    assert lines[2].split()[:2] == ["debug*", "up"]
    assert result.stderr == (f"closed: FAILED (alice@127.0.0.1:{closed_port}): cluster closed "
                             "unreachable: connection refused\n")

    only = chatops("clusters", "check", "test", timeout=60)
    assert only.returncode == 0 and only.stdout.startswith("test: OK"), only.stderr
    unknown = chatops("clusters", "check", "nowhere")
    assert (unknown.returncode, unknown.stderr) == (
        2, f"chatops: no cluster named nowhere in {config} (it has: test, closed)\n")


def test_clusters_check_looks_for_the_sudo_rule_of_jobs_as_the_person(tmp_path: Path) -> None:
    env = cluster_env()
    config = write_config(tmp_path / "job_configs.py", {
        "agent": cluster_settings(env, user="chatops-agent", submit_as="requester"),
        "norule": cluster_settings(env, submit_as="requester")})  # alice: no sudo rule
    result = Chatops(tmp_path, spine_env(tmp_path, CHATOPS_CONFIG=str(config)))(
        "clusters", "check", timeout=60)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "    sudo: (%chatops-submit) NOPASSWD: /usr/local/libexec/chatops-submit"), result.stdout
    assert result.stderr == (
        f"norule: FAILED (alice@127.0.0.1:{env['CHATOPS_TEST_SSH_PORT']}): connected and ran "
        "`sinfo`, but no sudo rule lets alice run /usr/local/libexec/chatops-submit without a "
        "password, and this cluster runs jobs as the person who asks (submit_as = "
        "\"requester\"): see DEPLOY.md, *Jobs as the person*\n")


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A folder every account may pass (pytest's own temporary folders are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="chatops-files-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_config_check_needs_each_clusters_files_readable_by_the_service(
        tmp_path: Path, public_dir: Path) -> None:
    env = cluster_env()
    key = public_dir / "keys" / "id_ed25519"
    key.parent.mkdir(mode=0o755)
    shutil.copy(env["CHATOPS_TEST_SSH_KEY"], key)
    key.chmod(0o600)  # root's; the service account (nobody here) cannot read it
    known = public_dir / "known_hosts"
    shutil.copy(env["CHATOPS_TEST_SSH_KNOWN_HOSTS"], known)
    known.chmod(0o644)
    missing = public_dir / "nowhere" / "known_hosts"
    config = write_config(tmp_path / "job_configs.py", {
        "gone": cluster_settings(env, known_hosts=str(missing), key_file=str(key)),
        "private": cluster_settings(env, key_file=str(key), known_hosts=str(known))})
    check = Chatops(tmp_path, spine_env(tmp_path, CHATOPS_CONFIG=str(config),
                                        CHATOPS_SERVICE_USER="nobody"))

    result = check("config", "check")
    assert result.returncode == 1
    problems = [line for line in result.stderr.splitlines() if line.startswith(str(config))]
    unreadable = (f"key_file {key} is not readable by nobody (CHATOPS_SERVICE_USER) "
                  "(mode 600)")
    assert problems == [
        f"{config}: cluster 'gone': known_hosts {missing} does not exist",
        f"{config}: cluster 'gone': {unreadable}",
        f"{config}: cluster 'private': {unreadable}",
        f"{config}: not OK: 3 cluster files cannot be used (`chatops clusters check` then "
        "tries the connections)"]
    assert f"{config}: OK" not in result.stdout

    key.chmod(0o644)
    key.parent.chmod(0o700)  # readable, but behind a folder nobody may pass
    result = check("config", "check")
    assert (f"{config}: cluster 'private': key_file {key} is not readable by nobody "
            f"(CHATOPS_SERVICE_USER): it cannot pass {key.parent}") in result.stderr

    key.parent.chmod(0o755)
    missing.parent.mkdir()
    shutil.copy(known, missing)
    result = check("config", "check")
    assert result.returncode == 0, result.stderr
    assert f"{config}: OK (0 namespaces)" in result.stdout
