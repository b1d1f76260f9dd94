"""One JSON codec for the whole package (orjson: measured fastest, see BENCHMARKS.md).

``dumps`` returns compact UTF-8 bytes; these exact bytes are what is sent,
retried, spooled and forwarded.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["JSONDecodeError", "dumps", "loads"]

JSONDecodeError = orjson.JSONDecodeError


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` to compact JSON bytes. Non-string dict keys are stringified."""
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON; raises :data:`JSONDecodeError` (a ``ValueError``) on bad input."""
    return orjson.loads(data)
