"""Inbound payloads, checked before use: JSON parsed safely, then its shape validated.

Every request from outside (GitHub, Slurm events over HTTP, Telegram, Slack, Discord) is
authenticated first; then its body goes through ``load``: JSON that does not parse, or is nested
so deep it would exhaust Python's recursion, or does not fit the kind's JSON Schema, raises
``BadPayload`` with a reason the route answers with a 4xx. The schemas (one module per payload
kind, beside the code that reads it) describe only what that code uses, so anything else may
vary; strings that reach the database forbid NUL, which PostgreSQL refuses in text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

# A string that may reach the database (PostgreSQL refuses NUL in text) or a chat message.
TEXT: dict[str, Any] = {"type": "string", "pattern": "^[^\x00]*$"}
OPTIONAL_TEXT: dict[str, Any] = {"anyOf": [TEXT, {"type": "null"}]}
# Platforms' ids: Telegram's are numbers, Discord's and Slack's strings of digits or letters.
ID: dict[str, Any] = {"anyOf": [{"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
                                {"type": "string", "pattern": "^[^\x00]{1,200}$"}]}


class BadPayload(ValueError):
    """The body cannot be used; ``str(exc)`` says why (for the 4xx answer)."""


def parse_json(body: bytes | str) -> Any:
    """The JSON value of ``body``, or BadPayload saying what is wrong with it."""
    try:
        return json.loads(body)
    except RecursionError:
        raise BadPayload("the body is nested too deeply to be a real payload") from None
    except UnicodeDecodeError:
        raise BadPayload("the body is not UTF-8 text") from None
    except ValueError as exc:
        raise BadPayload(f"the body is not valid JSON: {exc}") from None


_validators: dict[int, tuple[Mapping[str, Any], Draft202012Validator]] = {}


def _validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    """One validator per schema (schemas are module constants; the entry keeps it alive)."""
    entry = _validators.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = _validators[id(schema)] = (schema, Draft202012Validator(schema))
    return entry[1]


def check(value: Any, schema: Mapping[str, Any], what: str) -> None:
    """Raise BadPayload naming the first place where ``value`` does not fit ``schema``."""
    validator = _validator(schema)
    try:
        error = best_match(validator.iter_errors(value))
    except RecursionError:
        raise BadPayload(f"{what} is nested too deeply") from None
    if error is None:
        return
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    raise BadPayload(f"{what} does not have the expected shape: at {where.lstrip('.') or 'the top'}"
                     f", {_reason(error)}")


def load(body: bytes | str, schema: Mapping[str, Any], what: str) -> Any:
    """``parse_json`` then ``check``: the payload, safe to read as its schema says."""
    value = parse_json(body)
    check(value, schema, what)
    return value


def _reason(error: Any) -> str:
    if error.validator == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return f"expected {_article(wanted)}, not {_json_type(error.instance)}"
    if error.validator == "required":
        return error.message.replace("'", "")
    if error.validator == "pattern" and isinstance(error.instance, str) \
            and "\x00" in error.instance:
        return "the text has a NUL character"
    return error.message[:200]


def _article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return _article(name)
    return "null"
