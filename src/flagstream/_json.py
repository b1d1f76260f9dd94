"""One JSON codec for the whole package (orjson: measured fastest, see BENCHMARKS.md).

``dumps`` returns compact UTF-8 bytes; these exact bytes are what is sent,
retried, spooled and forwarded. User data can hold what orjson refuses
(integers beyond 64 bits, sets, arbitrary objects in event tags): those
payloads take a slower path through the standard library instead of failing,
with unknown objects written as their ``str()`` and non-finite floats as
``null`` so the body is always valid JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

__all__ = ["JSONDecodeError", "dumps", "loads"]

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
        text = json.dumps(
            _sanitize(obj), separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str
        )
        return text.encode("utf-8")


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON; raises :data:`JSONDecodeError` (a ``ValueError``) on bad input."""
    return orjson.loads(data)
