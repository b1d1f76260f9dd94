"""Where events live in Redis, and what one stream entry holds.

One stream per shard, each key carrying a Redis Cluster hash tag so that a
shard's events stream, its dead-letter stream and its trim counters share one
slot (one node, and transactions across them are allowed)::

    flagstream:{s0}:events   flagstream:{s0}:dlq   flagstream:{s0}:trim
    flagstream:{s1-3}:events ...

Shard ``k`` of ``S`` gets the tag ``s<k>`` or, when that slot falls outside the
``k``-th of ``S`` equal slot ranges, ``s<k>-<j>`` for the first ``j`` that
does: a Cluster created with evenly spread slots then holds each shard on a
different master (plain ``s0``, ``s1``, ``s2`` put two of three on one node).

An entry is one Event API request body, exactly as the batch processor built
it, plus what the forwarder needs to send it again (:data:`FIELDS`).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

from flagstream import _json
from flagstream.errors import ConfigurationError
from flagstream.events.log_event import JSON_HEADERS

__all__ = ["FIELDS", "SCHEMA_VERSION", "Entry", "MalformedEntry", "StreamLayout", "count_events"]

SCHEMA_VERSION = b"1"

#: Entry fields: ``b`` body bytes (never modified), ``u`` url, ``h`` headers (JSON),
#: ``n`` event count, ``p`` producer id, ``q`` producer sequence (``p``+``q`` is the
#: idempotency key), ``t`` enqueue time (Unix ms), ``v`` schema version.
FIELDS = ("b", "u", "h", "n", "p", "q", "t", "v")

_DEFAULT_HEADERS = _json.dumps(JSON_HEADERS)


_SLOTS = 16384


def key_slot(tag: str) -> int:
    """The Redis Cluster slot of a hash tag: CRC16 (XMODEM) of its bytes, mod 16384."""
    crc = 0
    for byte in tag.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % _SLOTS


def shard_tag(shard: int, shards: int) -> str:
    """The hash tag of ``shard``: its slot lies in the shard's share of the slot space."""
    low, high = shard * _SLOTS // shards, (shard + 1) * _SLOTS // shards
    tag = f"s{shard}"
    j = 0
    while not low <= key_slot(tag) < high:
        j += 1
        tag = f"s{shard}-{j}"
    return tag


@dataclass(frozen=True, slots=True)
class StreamLayout:
    """The keys of ``shards`` shard streams derived from one base name.

    >>> layout = StreamLayout("flagstream:events", shards=1)
    >>> layout.events(0), layout.dlq(0), layout.trim(0)
    ('flagstream:{s0}:events', 'flagstream:{s0}:dlq', 'flagstream:{s0}:trim')
    """

    stream: str = "flagstream:events"
    shards: int = 1

    def __post_init__(self) -> None:
        if not self.stream or "{" in self.stream or "}" in self.stream:
            raise ConfigurationError(f"stream must be a plain key name without braces, got {self.stream!r}")
        if isinstance(self.shards, bool) or not 1 <= self.shards <= 1024:
            raise ConfigurationError(f"shards must be between 1 and 1024, got {self.shards!r}")

    def _key(self, shard: int, suffix: str) -> str:
        # "flagstream:events" -> "flagstream:{s0}:events", "flagstream:{s0}:dlq";
        # "app:clicks" -> "app:{s0}:clicks", "app:{s0}:clicks:dlq".
        prefix, _, last = self.stream.rpartition(":")
        stem = f"{prefix}:{{{_tags(self.shards)[shard]}}}" if prefix else f"{{{_tags(self.shards)[shard]}}}"
        if suffix == "events":
            return f"{stem}:{last}"
        return f"{stem}:{suffix}" if last == "events" else f"{stem}:{last}:{suffix}"

    def events(self, shard: int) -> str:
        """The events stream of ``shard``."""
        return self._key(shard, "events")

    def dlq(self, shard: int) -> str:
        """The dead-letter stream beside ``shard``'s events."""
        return self._key(shard, "dlq")

    def trim(self, shard: int) -> str:
        """The hash counting what trimming removed from ``shard`` (acknowledged or lost)."""
        return self._key(shard, "trim")

    def all_shards(self) -> range:
        """Every shard number."""
        return range(self.shards)


@functools.lru_cache(maxsize=64)
def _tags(shards: int) -> tuple[str, ...]:
    return tuple(shard_tag(k, shards) for k in range(shards))


def count_events(log_event: Any, body: bytes) -> int:
    """Visitors in a request body: each has exactly one ``"snapshots":`` key.

    Inside a JSON string a quote is escaped, so the pattern cannot appear in a value;
    foreign (optimizely-sdk) log events are counted from their ``params``.
    """
    count = body.count(b'"snapshots":')
    if count:
        return count
    try:
        params = getattr(log_event, "params", None)
    except Exception:  # a body that is not JSON: the forwarder dead-letters it, counted as 0
        return 0
    visitors = params.get("visitors") if isinstance(params, dict) else None
    return len(visitors) if isinstance(visitors, list) else 0


def entry_fields(
    log_event: Any, body: bytes, producer: bytes, seq: int, now_ms: int | None = None
) -> dict[bytes, bytes]:
    """The stream fields for one request body."""
    headers = getattr(log_event, "headers", None)
    encoded = _DEFAULT_HEADERS if not headers or headers == JSON_HEADERS else _json.dumps(dict(headers))
    return {
        b"b": body,
        b"u": str(log_event.url).encode(),
        b"h": encoded,
        b"n": str(count_events(log_event, body)).encode(),
        b"p": producer,
        b"q": str(seq).encode(),
        b"t": str(now_ms if now_ms is not None else int(time.time() * 1000)).encode(),
        b"v": SCHEMA_VERSION,
    }


class MalformedEntry(ValueError):
    """A stream entry that is not a flagstream request (garbage in the stream)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry read back by a forwarder."""

    id: bytes
    body: bytes
    url: str
    headers: dict[str, str]
    events: int
    producer: bytes
    seq: int
    enqueued_ms: int

    @classmethod
    def decode(cls, entry_id: bytes, fields: dict[bytes, bytes]) -> Entry:
        """Read an entry's fields; raises :class:`MalformedEntry` saying what is wrong."""
        body = fields.get(b"b")
        url = fields.get(b"u")
        if not body:
            raise MalformedEntry("no body (field b)")
        if url is None or (url and not url.startswith((b"http://", b"https://"))):
            raise MalformedEntry(f"url (field u) is not http(s): {url!r}")
        try:
            headers = _json.loads(fields.get(b"h") or _DEFAULT_HEADERS)
            if not isinstance(headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
            ):
                raise MalformedEntry("headers (field h) are not a JSON object of strings")
            events = int(fields.get(b"n") or b"0")
            seq = int(fields.get(b"q") or b"0")
            enqueued = int(fields.get(b"t") or b"0")
        except (ValueError, _json.JSONDecodeError) as exc:
            if isinstance(exc, MalformedEntry):
                raise
            raise MalformedEntry(f"unreadable field: {exc}") from None
        return cls(entry_id, body, url.decode(), headers, events, fields.get(b"p", b""), seq, enqueued)
