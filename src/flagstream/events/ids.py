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

import binascii
import os
import random
import time
from typing import Final

__all__ = ["format_uuid", "new_uuid_bits", "now_millis", "uuid_json"]

_rng = random.Random(os.urandom(32))
new_uuid_bits = _rng.getrandbits


def _reseed() -> None:
    _rng.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)

# Version 4 and the RFC 4122 variant, set on the random bits when formatting.
_MASK: Final = ((1 << 128) - 1) & ~(0xF << 76) & ~(0x3 << 62)
_VERSION_AND_VARIANT: Final = (0x4 << 76) | (0x2 << 62)


def format_uuid(bits: int | str) -> str:
    """The canonical version-4 UUID text for 128 random ``bits`` (a string passes through)."""
    if isinstance(bits, str):
        return bits
    # bytes.hex with a dash every 2 bytes, minus the 3 dashes a UUID does not have:
    # measured 3x faster than formatting a 128-bit int with "032x", 1.4x than slicing.
    h = ((bits & _MASK) | _VERSION_AND_VARIANT).to_bytes(16, "big").hex("-", 2)
    return h[:4] + h[5:29] + h[30:34] + h[35:]


_hexlify = binascii.hexlify


def uuid_json(bits: int) -> bytes:
    """:func:`format_uuid` of 128 random ``bits`` as a JSON string: the quoted UTF-8 bytes."""
    # The digits in pairs with a dash between, as bytes: one call, then the four runs
    # a UUID groups them in (measured 1.6x faster than format_uuid plus a JSON dumps).
    h = _hexlify(((bits & _MASK) | _VERSION_AND_VARIANT).to_bytes(16, "big"), b"-", 2)
    return b'"%s%s%s%s"' % (h[:4], h[5:29], h[30:34], h[35:])


def now_millis() -> int:
    """Milliseconds since the epoch, as the Event API's ``timestamp``."""
    return int(time.time() * 1000)
