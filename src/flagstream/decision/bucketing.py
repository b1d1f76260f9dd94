"""Bucketing: MurmurHash3 x86 32-bit of ``bucketing_id + entity_id`` into 10 000 buckets.

This is Optimizely's bucketing, bit for bit: the key is the bucketing id
followed by the parent entity id (experiment, rule, holdout or group id),
hashed with seed 1, read as an unsigned 32-bit integer ``h``, and mapped to
``floor(h / 2**32 * 10000)``. Because ``h * 10000 < 2**46`` that float
expression is exact, so the integer form ``(h * 10000) >> 32`` gives the same
bucket. A traffic allocation is a list of ``(entityId, endOfRange)`` ranges;
the user falls into the first range whose ``endOfRange`` is above the bucket.
An ``entityId`` of ``""`` is an empty slice (traffic held back), and a bucket
past the last range falls into nothing.

>>> bucket_value("user1" + "1234")  # doctest: +SKIP
4213
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from typing import Final, Protocol

import mmh3

__all__ = [
    "HASH_SEED",
    "MAX_TRAFFIC_VALUE",
    "Allocation",
    "TrafficRange",
    "bucket_value",
    "find_bucket",
]

HASH_SEED: Final = 1
MAX_TRAFFIC_VALUE: Final = 10_000

_hash = mmh3.hash


class TrafficRange(Protocol):
    """One traffic allocation range as the config holds it."""

    @property
    def entity_id(self) -> str: ...

    @property
    def end_of_range(self) -> int: ...


def _encode(key: str) -> bytes:
    # mmh3 hashes the UTF-8 bytes of a str, as optimizely's pure-Python murmur
    # does; we encode ourselves because the C extension crashes the process
    # on a lone surrogate. Optimizely raises there; we hash the surrogates'
    # bytes instead (a documented difference: a decision never raises).
    try:
        return key.encode()
    except UnicodeEncodeError:
        return key.encode("utf-8", "surrogatepass")


def bucket_value(bucketing_key: str) -> int:
    """Return the bucket in ``[0, 10000)`` of ``bucketing_key`` (bucketing id + entity id)."""
    return (_hash(_encode(bucketing_key), HASH_SEED, False) * MAX_TRAFFIC_VALUE) >> 32


class Allocation:
    """A traffic allocation prepared for lookups.

    Ranges are kept in datafile order. When their ends never decrease (every
    real datafile) the lookup is a binary search; otherwise it scans in order,
    which is the reference semantics: the first range with ``bucket < end``.
    """

    __slots__ = ("_ends", "_ids", "_sorted")

    def __init__(self, ranges: Iterable[tuple[str, object]]) -> None:
        pairs = [(entity_id, end) for entity_id, end in ranges if end is not None]
        self._ids: tuple[str, ...] = tuple(entity_id for entity_id, _ in pairs)
        self._ends: tuple[object, ...] = tuple(end for _, end in pairs)
        try:
            self._sorted = (
                all(
                    a <= b  # type: ignore[operator]
                    for a, b in zip(self._ends, self._ends[1:], strict=False)
                )
                and all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in self._ends)
            )
        except TypeError:
            self._sorted = False

    @classmethod
    def from_traffic(cls, traffic_allocation: Iterable[TrafficRange]) -> Allocation:
        """Prepare the config's ``traffic_allocation`` tuple."""
        return cls((r.entity_id, r.end_of_range) for r in traffic_allocation)

    def __len__(self) -> int:
        return len(self._ids)

    def lookup(self, bucket: int) -> str | None:
        """Return the entity id whose range holds ``bucket`` (``""`` for an empty slice), else None."""
        if self._sorted:
            index = bisect_right(self._ends, bucket)  # type: ignore[type-var]
            return self._ids[index] if index < len(self._ids) else None
        for entity_id, end in zip(self._ids, self._ends, strict=True):
            try:
                if bucket < end:  # type: ignore[operator]
                    return entity_id
            except TypeError:
                continue
        return None


def find_bucket(bucketing_id: str, parent_id: object, allocation: Allocation) -> tuple[int, str | None]:
    """Bucket ``bucketing_id`` within ``parent_id`` and return ``(bucket, entity id or None)``."""
    bucket = (_hash(_encode(f"{bucketing_id}{parent_id}"), HASH_SEED, False) * MAX_TRAFFIC_VALUE) >> 32
    return bucket, allocation.lookup(bucket)
