"""The forwarder's maintenance thread: leases, reclaim, trimming, consumer janitor.

* Leases: every ``lease_interval`` (a third of ``min_idle``) the entries this
  forwarder holds are re-claimed with :data:`~flagstream.broker.scripts.KEEP_LEASE`,
  so their idle time never reaches ``min_idle`` during a long retry and no peer
  claims (and posts) them. An entry a peer took anyway (this process was stopped
  past ``min_idle``) is marked lost and no longer posted here.
* Reclaim: every ``reclaim_interval``, ``XAUTOCLAIM`` of entries idle past
  ``min_idle`` (a dead or stuck forwarder's), following the cursor to ``0-0``.
  Entries the server deleted by trimming come back in the reply's third element
  (Redis 7.0+); they are counted (``lost_to_trim``) and already gone from the
  pending list.
* Trimming: every ``trim_interval``, acknowledged entries are removed
  (:data:`~flagstream.broker.scripts.TRIM` in ``safe`` mode), so a stream holds
  what is not yet delivered, not its history.
* Janitor: every ``janitor_interval``, consumers idle for ``janitor_idle`` with
  nothing pending are deleted (never one with pending entries; checked atomically).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from flagstream.broker.reading import Item
from flagstream.broker.scripts import DROP_IDLE_CONSUMER, KEEP_LEASE, TRIM

if TYPE_CHECKING:
    from flagstream.broker.forwarder import Forwarder

__all__ = ["Maintenance"]

_RECLAIM_PAGE = 100


class Maintenance:
    """Runs the periodic steps of one :class:`~flagstream.broker.forwarder.Forwarder`."""

    def __init__(self, forwarder: Forwarder) -> None:
        self.fw = forwarder
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursors: dict[int, bytes] = {}

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._loop, name="flagstream-forward-maint", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (after the workers: leases are kept until they are done)."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        s = self.fw.settings
        now = time.monotonic()
        due = {"lease": now + s.lease_interval, "reclaim": now, "trim": now + s.trim_interval,
               "janitor": now + min(s.janitor_interval, 1.0)}  # fmt: skip
        intervals = {"lease": s.lease_interval, "reclaim": s.reclaim_interval, "trim": s.trim_interval,
                     "janitor": s.janitor_interval}  # fmt: skip
        steps = {
            "lease": self.keep_leases,
            "reclaim": self.reclaim,
            "trim": self.trim,
            "janitor": self.janitor,
        }
        while not self._done.is_set():
            now = time.monotonic()
            for name, when in due.items():
                if now < when:
                    continue
                if name in ("reclaim", "janitor", "trim") and self.fw.stopping.is_set():
                    continue
                try:
                    steps[name]()
                    self.fw.metrics.redis_ok()
                except Exception as exc:
                    self.fw.redis_failed(exc, name)
                due[name] = time.monotonic() + intervals[name]
            self._done.wait(max(0.02, min(due.values()) - time.monotonic()))

    def keep_leases(self) -> None:
        """Re-claim held entries that are still ours; mark the others lost."""
        fw = self.fw
        for shard, ids in fw.leases.snapshot().items():
            key = fw.layout.events(shard)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                kept = fw.client.eval(KEEP_LEASE, 1, key, fw.settings.group, fw.settings.name, *chunk)
                lost = set(chunk) - {bytes(k) for k in kept or ()}
                if lost:
                    fw.leases.mark_lost(shard, lost)

    def reclaim(self) -> None:
        """``XAUTOCLAIM`` idle entries of every shard, queueing them for the workers."""
        fw = self.fw
        s = fw.settings
        backlog = s.window * s.concurrency * 2
        min_idle_ms = int(s.min_idle * 1000)
        for shard in fw.layout.all_shards():
            key = fw.layout.events(shard)
            cursor = self._cursors.get(shard, b"0-0")
            for _ in range(20):  # bounded per tick; the cursor carries on next time
                if fw.queue.claimed_count() >= backlog:
                    break
                reply = fw.client.xautoclaim(
                    key, s.group, s.name, min_idle_ms, start_id=cursor, count=_RECLAIM_PAGE
                )
                cursor = reply[0]
                claimed = [(i, f) for i, f in reply[1] if i is not None]
                deleted = reply[2] if len(reply) > 2 else []
                if deleted:
                    fw.metrics.add("lost_to_trim", len(deleted))
                if claimed:
                    ids = [i for i, _ in claimed]
                    fw.leases.hold(shard, ids)
                    counts = fw.delivery_counts(shard, ids)
                    fw.metrics.add("reclaimed", len(ids))
                    fw.queue.put_claimed([Item(shard, i, f or {}, counts.get(i, 2)) for i, f in claimed])
                if cursor in (b"0-0", "0-0"):
                    break
            self._cursors[shard] = cursor

    def trim(self) -> None:
        """Remove acknowledged entries from every shard (never an unacknowledged one)."""
        fw = self.fw
        for shard in fw.layout.all_shards():
            fw.client.eval(
                TRIM, 2, fw.layout.events(shard), fw.layout.trim(shard), fw.settings.group, 0, "safe"
            )

    def janitor(self) -> None:
        """Delete consumers idle past ``janitor_idle`` that have nothing pending."""
        fw = self.fw
        s = fw.settings
        idle_ms = s.janitor_idle * 1000
        for shard in fw.layout.all_shards():
            key = fw.layout.events(shard)
            try:
                consumers = fw.client.xinfo_consumers(key, s.group)
            except Exception as exc:
                if "NOGROUP" in str(exc) or "no such key" in str(exc):
                    continue
                raise
            for info in consumers:
                name = info["name"]
                name = name.decode() if isinstance(name, bytes) else str(name)
                # 7.2+ reports `inactive` (since the last successful read); before, `idle` meant that.
                idle = info.get("inactive", info.get("idle", 0))
                if name == s.name or int(info.get("pending", 0)) > 0 or int(idle) < idle_ms:
                    continue
                if fw.client.eval(DROP_IDLE_CONSUMER, 1, key, s.group, name):
                    fw.metrics.add("consumers_removed")
