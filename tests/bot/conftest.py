"""Fixtures of the chat platforms' tests: a real service, and its backend running."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatops.platform import Platform
from chatops.service import Service
from tests.support.chat import Running, chat_service


@pytest.fixture
def make_service(tmp_path: Path) -> Callable[..., Service]:
    def make(**env: str) -> Service:
        return chat_service(tmp_path, **env)

    return make


@pytest.fixture
def run_backend() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(service: Service, platform: Platform) -> Running:
        running = Running(service, platform)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()
