"""JSON text from json's own C encoder, made once.

``json.dumps`` and ``JSONEncoder.encode`` make a new encoder (and a Python closure) on every
call: for the queue, which writes two JSON texts a job (its arguments and its report), that was
15 000 of ≈400 000 instructions a job (docs/benchmarks.md). These give the text ``json.dumps``
gives with the same options; they do not look for circular references (callers pass plain data:
a cycle ends in RecursionError rather than ValueError).
"""

from __future__ import annotations

from json import JSONEncoder
from json.encoder import c_make_encoder, encode_basestring_ascii
from typing import Any

_REFUSE = JSONEncoder().default  # TypeError: "Object of type X is not JSON serializable"


def _encoder(item_separator: str, key_separator: str, sort_keys: bool) -> Any:
    if c_make_encoder is None:  # a Python built without the _json module
        return JSONEncoder(separators=(item_separator, key_separator),
                           sort_keys=sort_keys).iterencode
    return c_make_encoder(None, _REFUSE, encode_basestring_ascii, None, key_separator,
                          item_separator, sort_keys, False, True)


_SORTED_COMPACT = _encoder(",", ":", True)
_PLAIN = _encoder(", ", ": ", False)


def canonical(value: Any) -> str:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"))``: one text per value."""
    return "".join(_SORTED_COMPACT(value, 0))


def dumps(value: Any) -> str:
    """``json.dumps(value)``."""
    return "".join(_PLAIN(value, 0))
