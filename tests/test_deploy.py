"""DEPLOY.md, followed on this machine by scripts/deploy-check.py: a fresh clone of the
repository's HEAD, the `chatops` account, `make install`, a new CHATOPS_HOME, the unit files'
ExecStart lines run by hand, backups, retention, separate units and an upgrade."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.support.cli import REPO
from tests.support.require import require

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # two installs from PyPI: minutes


def test_deploy_md_works_on_this_machine() -> None:
    require(os.geteuid() == 0, "root (the check creates the chatops account)")
    require(shutil.which("sudo") is not None, "sudo", "scripts/test-setup.sh")
    done = subprocess.run(["/usr/bin/python3", str(REPO / "scripts" / "deploy-check.py"),
                           "--source", str(REPO)], capture_output=True, text=True,
                          timeout=1500)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
    assert "deploy-check: DEPLOY.md works on this machine" in done.stdout
    for fact in ("the production install has none of the test tools",
                 "db upgrade says it created the database", "/healthz says ok",
                 "the online backup is whole and holds the jobs",
                 "the upgrade pulled the new commit",
                 "a chat command gets its answer after the upgrade"):
        assert f"ok: {fact}" in done.stdout
