"""``flagstream dlq list|replay|drop``: look at, resend or discard dead-lettered requests.

Replaying moves an entry back to its shard's events stream with
:data:`~flagstream.broker.scripts.REPLAY` (copy and delete in one atomic
step), so replaying the same entry twice moves it once; the events keep their
uuids, so a receiver that de-duplicates (the Event API, the collector) counts
them once even if the first copy was delivered after all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flagstream.broker.layout import StreamLayout
from flagstream.broker.scripts import REPLAY

__all__ = ["DeadLetter", "drop", "list_dead", "replay"]


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-letter entry."""

    shard: int
    id: str
    reason: str
    error: str
    events: int
    source: str
    body_bytes: int

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return {
            "shard": self.shard,
            "id": self.id,
            "reason": self.reason,
            "error": self.error,
            "events": self.events,
            "source": self.source,
            "body_bytes": self.body_bytes,
        }


def list_dead(client: Any, layout: StreamLayout, count: int = 100) -> list[DeadLetter]:
    """Up to ``count`` dead letters per shard, oldest first."""
    found: list[DeadLetter] = []
    for shard in layout.all_shards():
        for entry_id, fields in client.xrange(layout.dlq(shard), count=count):
            try:
                events = int(fields.get(b"n") or 0)
            except ValueError:
                events = 0
            found.append(
                DeadLetter(
                    shard=shard,
                    id=_text(entry_id),
                    reason=_text(fields.get(b"reason", b"")),
                    error=_text(fields.get(b"error", b"")),
                    events=events,
                    source=_text(fields.get(b"src", b"")),
                    body_bytes=len(fields.get(b"b", b"")),
                )
            )
    return found


def _selected(client: Any, layout: StreamLayout, ids: list[str] | None) -> list[tuple[int, str]]:
    if ids:
        wanted = set(ids)
        return [(d.shard, d.id) for d in list_dead(client, layout, count=100_000) if d.id in wanted]
    return [(d.shard, d.id) for d in list_dead(client, layout, count=100_000)]


def replay(client: Any, layout: StreamLayout, ids: list[str] | None = None) -> int:
    """Move dead letters (all, or ``ids``) back to their events streams; returns how many moved."""
    moved = 0
    for shard, entry_id in _selected(client, layout, ids):
        if client.eval(REPLAY, 2, layout.dlq(shard), layout.events(shard), entry_id):
            moved += 1
    return moved


def drop(client: Any, layout: StreamLayout, ids: list[str] | None = None) -> int:
    """Delete dead letters (all, or ``ids``); returns how many were deleted."""
    deleted = 0
    for shard, entry_id in _selected(client, layout, ids):
        deleted += int(client.xdel(layout.dlq(shard), entry_id))
    return deleted
