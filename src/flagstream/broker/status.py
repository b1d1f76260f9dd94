"""``flagstream forward status``: what each shard holds, read from the server.

Per shard: stream length, the group's lag (entries never delivered; Redis 7.0+
reports it, ``None`` when the server cannot tell), pending entries, the age of
the oldest pending entry (from its id, i.e. since it was written), consumers,
dead letters, and what trimming removed (acknowledged, and lost: never
delivered or pending).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from flagstream.broker.layout import StreamLayout

__all__ = ["ShardStatus", "shard_status", "status"]


@dataclass(frozen=True, slots=True)
class ShardStatus:
    """One shard's numbers."""

    shard: int
    stream: str
    length: int
    lag: int | None
    pending: int
    oldest_pending_age: float | None
    consumers: int
    dead_letters: int
    trimmed_acked: int
    lost_undelivered: int
    lost_pending: int

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return asdict(self)


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def shard_status(client: Any, layout: StreamLayout, group: str, shard: int) -> ShardStatus:
    """Read one shard's status (a missing stream or group reads as zeros)."""
    key = layout.events(shard)
    length = _int(client.xlen(key))
    lag: int | None = None
    pending = 0
    consumers = 0
    oldest: float | None = None
    if length or client.exists(key):
        for info in client.xinfo_groups(key):
            name = info.get("name")
            if (name.decode() if isinstance(name, bytes) else name) != group:
                continue
            lag = None if info.get("lag") is None else int(info["lag"])
            pending = _int(info.get("pending"))
            consumers = _int(info.get("consumers"))
        if pending:
            summary = client.xpending(key, group)
            first = summary.get("min")
            if first:
                first_ms = int((first.decode() if isinstance(first, bytes) else first).split("-")[0])
                oldest = max(0.0, time.time() - first_ms / 1000.0)
    trim = client.hgetall(layout.trim(shard)) or {}
    return ShardStatus(
        shard=shard,
        stream=key,
        length=length,
        lag=lag,
        pending=pending,
        oldest_pending_age=oldest,
        consumers=consumers,
        dead_letters=_int(client.xlen(layout.dlq(shard))),
        trimmed_acked=_int(trim.get(b"acked")),
        lost_undelivered=_int(trim.get(b"lost_undelivered")),
        lost_pending=_int(trim.get(b"lost_pending")),
    )


def status(client: Any, layout: StreamLayout, group: str = "forwarders") -> list[ShardStatus]:
    """Every shard's status."""
    return [shard_status(client, layout, group, shard) for shard in layout.all_shards()]
