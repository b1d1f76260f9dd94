"""One JSON codec for the whole package (orjson: measured fastest, see BENCHMARKS.md).

``dumps`` returns compact UTF-8 bytes; these exact bytes are what is sent,
retried, spooled and forwarded. User data can hold what orjson refuses
(integers beyond 64 bits, lone surrogates, sets, arbitrary objects in event
tags): those payloads take a slower path through the standard library instead
of failing, with unknown objects written as their ``str()``, non-finite floats
as ``null`` and non-ASCII characters escaped, so the body is always valid JSON.

``loads_exact`` is for text that may hold integers beyond 64 bits, which
orjson silently reads as floats.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

__all__ = ["JSONDecodeError", "dumps", "loads", "loads_exact"]

JSONDecodeError = orjson.JSONDecodeError


def _sanitize(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_sanitize(v) for v in obj]
    return obj


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` to compact JSON bytes. Non-string dict keys are stringified."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # ensure_ascii: a lone surrogate (which orjson refuses) becomes a \ud800 escape, as
        # optimizely-sdk writes it; UTF-8 text cannot carry it raw.
        text = json.dumps(
            _sanitize(obj), separators=(",", ":"), ensure_ascii=True, allow_nan=False, default=str
        )
        return text.encode("ascii")


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON; raises :data:`JSONDecodeError` (a ``ValueError``) on bad input."""
    return orjson.loads(data)


_LONG_DIGITS = re.compile(r"[0-9]{19}")
_LONG_DIGITS_BYTES = re.compile(rb"[0-9]{19}")


def loads_exact(data: bytes | str) -> Any:
    """Parse JSON as the standard library does (also NaN, Infinity and integers of any size),
    with orjson's speed whenever no 19-digit run could be a number orjson would round."""
    pattern = _LONG_DIGITS_BYTES if isinstance(data, bytes) else _LONG_DIGITS
    if pattern.search(data):  # type: ignore[arg-type]
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # NaN, Infinity, lone surrogates: the stdlib reads them
        return json.loads(data)
