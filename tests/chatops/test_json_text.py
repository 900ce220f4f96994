"""The stored JSON texts are byte for byte json.dumps's: a job's canonical arguments (whose hash
joins equal requests, including those queued before an upgrade) and a report's payload."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from chatops import json_text
from chatops.db import args_digest
from chatops.queue import canonical_args

VALUES = [
    {"name": "Bob", "count": "3"},
    {"b": "2", "a": "1", "z": {"y": [1, 2.5, None, True, False], "x": "é ✓ \n \"q\" \\"}},
    {"emoji": "🚀", "ctrl": "\x01\x7f", "big": 2**70, "neg": -0.0, "inf": float("inf")},
    [],
    {},
    "plain",
    ["a", ("tuple", 1)],
]


@pytest.mark.parametrize("value", VALUES)
def test_canonical_text_is_json_dumps_sorted_and_compact(value: object) -> None:
    assert json_text.canonical(value) == json.dumps(value, sort_keys=True,
                                                    separators=(",", ":"))


@pytest.mark.parametrize("value", VALUES)
def test_plain_text_is_json_dumps(value: object) -> None:
    assert json_text.dumps(value) == json.dumps(value)


def test_arguments_hash_as_before_so_requests_join_jobs_queued_before_an_upgrade() -> None:
    # The hash json.dumps's text gave (what migration 0010 and earlier releases stored).
    args = {"who": "Zoë", "n": "1"}
    before = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode(args)
    assert canonical_args(args) == before == '{"n":"1","who":"Zo\\u00eb"}'
    assert args_digest(canonical_args(args)) == args_digest(before)
    assert canonical_args(MappingProxyType(args)) == before  # any mapping, not only a dict


def test_what_json_cannot_hold_is_refused_as_json_dumps_refuses_it() -> None:
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        json_text.dumps({"a": {1, 2}})
    with pytest.raises(TypeError, match="Object of type bytes is not JSON serializable"):
        json_text.canonical({"a": b"x"})
