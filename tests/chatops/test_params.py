"""Lengths of time as people type them (parameter types, `chatops prune --older-than`)."""

from __future__ import annotations

import pytest

from chatops.params import parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("2.5", 2.5), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("1h 30m", 5400),
    ("2d", 172800), ("90d", 7776000), ("12w", 7257600), ("36H", 129600),
    ("1:30", 90), ("1:30:00", 5400), ("100:00:00", 360000),
])
def test_lengths_of_time(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "m5", "1h and 2m", "1:3", "-5", "5 m s"])
def test_what_is_not_a_length_of_time(text: str) -> None:
    assert parse_duration(text) is None
