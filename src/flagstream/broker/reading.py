"""What a forwarder reads next, in order: reclaimed entries, its own pending entries, new entries.

A restarted forwarder with a stable name first replays its own pending list
(``XREADGROUP ... <id>`` from ``0``, following the last id, as the Redis docs
prescribe for crash recovery); only when that is empty does it read ``>``.
Entries another forwarder left idle arrive through :meth:`ReadQueue.put_claimed`.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["Held", "Item", "LeaseRegistry", "ReadQueue", "parse_read"]


@dataclass(slots=True)
class Item:
    """One entry as read: id, raw fields (``{}`` when trimmed away) and times delivered."""

    shard: int
    id: bytes
    fields: dict[bytes, bytes]
    deliveries: int


@dataclass(slots=True)
class Held:
    """An entry this forwarder owns; ``lost`` once a peer has claimed it."""

    lost: bool = False


class LeaseRegistry:
    """The entries this forwarder holds, per shard, for the lease keeper."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, dict[bytes, Held]] = collections.defaultdict(dict)

    def hold(self, shard: int, ids: list[bytes]) -> dict[bytes, Held]:
        """Start holding ``ids``; returns their records."""
        with self._lock:
            held = self._held[shard]
            return {i: held.setdefault(i, Held()) for i in ids}

    def records(self, shard: int, ids: list[bytes]) -> dict[bytes, Held]:
        """The records of held ``ids``; an id no longer held was taken by a peer (``lost``)."""
        with self._lock:
            held = self._held[shard]
            return {i: held.get(i) or Held(lost=True) for i in ids}

    def release(self, shard: int, ids: list[bytes]) -> None:
        """Stop holding ``ids`` (settled or given up)."""
        with self._lock:
            held = self._held[shard]
            for i in ids:
                held.pop(i, None)

    def snapshot(self) -> dict[int, list[bytes]]:
        """Held ids per shard."""
        with self._lock:
            return {shard: list(ids) for shard, ids in self._held.items() if ids}

    def mark_lost(self, shard: int, ids: set[bytes]) -> None:
        """Peers own ``ids`` now: their holders stop posting them."""
        with self._lock:
            for i in ids:
                record = self._held[shard].pop(i, None)
                if record is not None:
                    record.lost = True

    def count(self) -> int:
        """Entries held."""
        with self._lock:
            return sum(len(ids) for ids in self._held.values())


class ReadQueue:
    """Reclaimed entries waiting for a worker, and which shards still replay their own history."""

    def __init__(self, shards: int) -> None:
        self._lock = threading.Lock()
        self._claimed: collections.deque[Item] = collections.deque()
        self.history: dict[int, bytes] = dict.fromkeys(range(shards), b"0")
        self.history_lock = threading.Lock()

    def put_claimed(self, items: list[Item]) -> None:
        """Queue entries claimed from idle consumers."""
        with self._lock:
            self._claimed.extend(items)

    def claimed_count(self) -> int:
        """Claimed entries not yet taken."""
        with self._lock:
            return len(self._claimed)

    def take_claimed(self, limit: int) -> tuple[int, list[Item]] | None:
        """Up to ``limit`` claimed entries of one shard, or None."""
        with self._lock:
            if not self._claimed:
                return None
            shard = self._claimed[0].shard
            taken: list[Item] = []
            keep: collections.deque[Item] = collections.deque()
            while self._claimed:
                item = self._claimed.popleft()
                (taken if item.shard == shard and len(taken) < limit else keep).append(item)
            self._claimed = keep
            return shard, taken


def parse_read(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The ``(id, fields)`` pairs of a one-stream ``XREADGROUP`` reply (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else (pair[1] for pair in reply)
    entries: list[tuple[bytes, dict[bytes, bytes]]] = []
    for stream_entries in streams:
        for entry_id, fields in stream_entries:
            entries.append((entry_id, fields or {}))
    return entries
