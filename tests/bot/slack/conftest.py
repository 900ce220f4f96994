"""Fixtures of the Slack tests: a fake Slack Web API and the whole stack against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_slack import FakeSlack
from tests.support.slack import Stack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def stack(tmp_path: Path, fake: FakeSlack) -> Iterator[Stack]:
    running = Stack(tmp_path, fake)
    try:
        yield running
    finally:
        running.close()
