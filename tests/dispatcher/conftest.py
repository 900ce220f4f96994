"""Fixtures of the dispatcher's tests on the real test cluster."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.support.remote import cluster_env


@pytest.fixture
def node() -> Iterator[str]:
    """The test cluster's node; whatever a test does to it, it is resumed at the end (others
    share the cluster)."""
    env = cluster_env()
    name = env["CHATOPS_TEST_SLURM_NODE"]
    try:
        yield name
    finally:
        subprocess.run(["scontrol", "update", f"nodename={name}", "state=resume"],
                       capture_output=True, timeout=30)
