"""Event identity: uuids and timestamps, fixed when an event is created.

``uuid4()`` costs about 5 µs here, more than the whole budget of a ``track``
call, so the caller only draws 128 random bits (a PRNG seeded from the OS,
about 0.1 µs) and the worker formats them as a version-4 UUID string. The bits
are fixed at creation, so retries and spool replays carry the same uuid and the
Event API de-duplicates them. The generator is reseeded in a forked child, or
parent and child would produce the same uuids and one side's events would be
de-duplicated away.
"""

from __future__ import annotations

import os
import random
import time

__all__ = ["format_uuid", "new_uuid_bits", "now_millis"]

_rng = random.Random(os.urandom(32))
new_uuid_bits = _rng.getrandbits


def _reseed() -> None:
    _rng.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)

_VERSION_MASK = ~(0xF << 76) & ((1 << 128) - 1)
_VARIANT_MASK = ~(0x3 << 62) & ((1 << 128) - 1)
_VERSION_4 = 0x4 << 76
_VARIANT_RFC = 0x2 << 62


def format_uuid(bits: int | str) -> str:
    """The canonical version-4 UUID text for 128 random ``bits`` (a string passes through)."""
    if isinstance(bits, str):
        return bits
    n = (bits & _VERSION_MASK & _VARIANT_MASK) | _VERSION_4 | _VARIANT_RFC
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def now_millis() -> int:
    """Milliseconds since the epoch, as the Event API's ``timestamp``."""
    return int(time.time() * 1000)
