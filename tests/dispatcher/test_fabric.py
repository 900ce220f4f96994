"""Fabric jobs: a fabfile fetched from a URL (with a cached fallback), `fab <task>` run with the
cluster's connection settings against the live test cluster, and strict host keys."""

from __future__ import annotations

import http.server
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.remote import Harness, cluster_env, cluster_settings
from tests.support.serving import serve_in_thread

pytestmark = pytest.mark.slow  # needs the test cluster, Synapse or a browser

FABFILE = '''
from fabric import task


@task
def whoami(c):
    c.run("echo fabric-ok $(whoami) on $(hostname)")
'''


class FabfileServer:
    """A local HTTP server serving one fabfile; stoppable to simulate a failed fetch."""

    def __init__(self, folder: Path):
        (folder / "fabfile.py").write_text(FABFILE)
        handler = lambda *a: http.server.SimpleHTTPRequestHandler(  # noqa: E731
            *a, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fabfile.py"
        self.thread = serve_in_thread(self.server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabfileServer]:
    server = FabfileServer(tmp_path_factory.mktemp("fabfile"))
    yield server
    server.stop()


def fab_namespace(fabfile: str, cluster: str) -> dict:
    return {"fabfile": fabfile, "cluster": cluster,
            "jobs": {"whoami": {"run_args_template": "fab whoami", "report_stdout": True,
                                "timeout": 60}},
            "slack": [{"command": "whoami", "help": "who am I on the cluster",
                       "action": "schedule_job", "job_type": "whoami"}]}


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, served: FabfileServer
            ) -> Iterator[Harness]:
    env = cluster_env()
    home = tmp_path_factory.mktemp("fab-home")
    keys = tmp_path_factory.mktemp("fab-keys")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "k")],
                   check=True)
    kind, blob = (keys / "k.pub").read_text().split()[:2]
    host = f"[{env['CHATOPS_TEST_SSH_HOST']}]:{env['CHATOPS_TEST_SSH_PORT']}"
    (keys / "known_hosts").write_text(f"{host} {kind} {blob}\n")
    (home / "workspace" / "local").mkdir(parents=True)
    (home / "workspace" / "local" / "fabfile.py").write_text(FABFILE)
    clusters = {"test": cluster_settings(env),
                "wrongkey": cluster_settings(env, known_hosts=str(keys / "known_hosts"))}
    raw = {"deploy": fab_namespace(served.url, "test"),
           "local": fab_namespace("fabfile.py", "test"),
           "strict": fab_namespace(served.url, "wrongkey")}
    h = Harness(home, raw, clusters)
    yield h
    h.stop()


def test_a_fabric_task_runs_on_the_cluster(harness: Harness) -> None:
    _, report = harness.run("deploy whoami")
    assert re.fullmatch(r"fabric-ok alice on \S+", report), report
    fabfile = harness.settings.writeable_dir / "deploy" / "fabfile.py"
    assert fabfile.read_text() == FABFILE


def test_a_fabfile_given_as_a_path_is_used(harness: Harness) -> None:
    _, report = harness.run("local whoami")
    assert re.fullmatch(r"fabric-ok alice on \S+", report), report


def test_unknown_host_keys_are_refused_by_fabric_jobs(harness: Harness) -> None:
    job_id, report = harness.run("strict whoami")
    assert report.startswith(f"`strict_whoami` (job {job_id}) failed with exit code 1.\n"
                             "Last lines of stderr:\n```\n"), report
    assert "paramiko.ssh_exception.BadHostKeyException: Host key for server" in report, report


def test_a_failed_fetch_runs_the_cached_copy_and_says_so(harness: Harness,
                                                         served: FabfileServer) -> None:
    harness.run("deploy whoami")  # cached now
    served.stop()
    _, report = harness.run("deploy whoami")
    first, second = report.split("\n", 1)
    assert re.fullmatch(rf"Could not fetch the fabfile {re.escape(served.url)} \(<urlopen "
                        r"error \[Errno 111\] Connection refused>\); ran the cached copy from "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d UTC\.", first), first
    assert re.fullmatch(r"fabric-ok alice on \S+", second), second


def test_a_failed_fetch_without_a_cached_copy_fails_the_job(tmp_path: Path) -> None:
    env = cluster_env()
    url = "http://127.0.0.1:9/fabfile.py"  # the discard port: nothing listens
    h = Harness(tmp_path / "home", {"deploy": fab_namespace(url, "test")},
                {"test": cluster_settings(env)})
    try:
        job_id, report = h.run("deploy whoami")
        assert report == (f"`deploy_whoami` (job {job_id}) failed: could not fetch the "
                          f"fabfile {url}: <urlopen error [Errno 111] Connection refused>.")
    finally:
        h.stop()
