"""The batch processor's state machine: queue, bounds, windows, counters.

This module does no I/O, starts no thread and reads no clock: the driver
(:mod:`flagstream.delivery.processor` for threads, :mod:`flagstream.delivery.aio`
for asyncio) holds a lock around every call and passes the time in. That is
what lets both drivers share one behaviour and lets tests drive it by hand.

Events get a sequence number when accepted (implicitly: ``head_seq`` is the
number of the first queued event). The worker takes a *window* (up to
``batch_size`` events from the head, bounded by estimated bytes); a window is
*in flight* until every event in it is settled (delivered or dropped). A flush
covers the events accepted before it: it is done when none of them is queued
or in flight, which stays exact with several windows in flight at once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

from flagstream.delivery.settings import BatchSettings
from flagstream.delivery.spool.spool import SpoolStats
from flagstream.delivery.stats import DeliveryStats, freeze_counts
from flagstream.events.user_event import UserEvent

__all__ = ["ACCEPTED", "ACCEPTED_WAKE", "REFUSED", "BatchCore", "Window"]

ACCEPTED: Final = 0
ACCEPTED_WAKE: Final = 1  # accepted, and a batch just filled (by count or bytes): wake a worker
REFUSED: Final = 2  # over a bound or closed: the driver applies the overflow policy


@dataclass(slots=True, eq=False)
class Window:
    """Events taken from the head of the queue together; settled piece by piece."""

    first_seq: int
    events: list[UserEvent]  # in queue order
    nbytes: int
    remaining: int = field(init=False)

    def __post_init__(self) -> None:
        self.remaining = len(self.events)


def _add_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}


class BatchCore:
    """Queue, bounds and counters of one batch processor (no I/O; caller holds the lock)."""

    __slots__ = (
        "batch_size",
        "closing",
        "delivered",
        "dropped",
        "enqueued",
        "flush_target",
        "head_seq",
        "in_flight",
        "in_flight_events",
        "last_error",
        "last_error_at",
        "last_success",
        "max_bytes",
        "max_events",
        "max_request_bytes",
        "queue",
        "queued_bytes",
        "requests",
        "retried",
        "settings",
        "sizes",
        "unreported",
    )

    def __init__(self, settings: BatchSettings) -> None:
        self.settings = settings
        self.max_events = settings.max_queue_events
        self.max_bytes = settings.max_queue_bytes
        self.max_request_bytes = settings.max_request_bytes
        self.batch_size = settings.batch_size
        # The events and their estimated sizes side by side, not as (event, size) pairs: a pair
        # per queued event would be one more GC-tracked object for every collection to traverse
        # (bench/stall_probe.py). Both deques change together, under the processor's lock.
        self.queue: deque[UserEvent] = deque()
        self.sizes: deque[int] = deque()
        self.queued_bytes = 0
        self.head_seq = 0
        self.flush_target = 0
        self.closing = False
        self.in_flight: dict[int, Window] = {}
        self.in_flight_events = 0
        self.enqueued = 0
        self.delivered = 0
        self.requests = 0
        self.retried = 0
        self.dropped: dict[str, int] = {}
        self.unreported: dict[str, int] = {}  # drops not yet logged/notified by a worker
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_success: float | None = None

    # -- the caller's side -------------------------------------------------------------

    def offer(self, event: UserEvent, size: int) -> int:
        """Append ``event`` if every bound allows it; the hot path of ``process()``."""
        queue = self.queue
        if (
            len(queue) < self.max_events
            and self.queued_bytes + size <= self.max_bytes
            and size <= self.max_request_bytes
            and not self.closing
        ):
            queue.append(event)
            self.sizes.append(size)
            self.queued_bytes += size
            self.enqueued += 1
            if len(queue) == self.batch_size:
                return ACCEPTED_WAKE
            if self.queued_bytes >= self.max_request_bytes > self.queued_bytes - size:
                return ACCEPTED_WAKE  # large events: a full request's worth of bytes is queued
            return ACCEPTED
        return REFUSED

    def refusal(self, size: int) -> str | None:
        """Why an event of ``size`` bytes can never be accepted now, or ``None`` if only room is missing."""
        if self.closing:
            return "closed"
        if size > self.max_request_bytes or size > self.max_bytes:
            return "too_large"
        return None

    def has_room(self, size: int) -> bool:
        """Whether an event of ``size`` bytes fits under both bounds."""
        return len(self.queue) < self.max_events and self.queued_bytes + size <= self.max_bytes

    def refuse(self, reason: str, count: int = 1) -> None:
        """Count events refused at ``process()`` (reported later by a worker)."""
        self.dropped[reason] = self.dropped.get(reason, 0) + count
        self.unreported[reason] = self.unreported.get(reason, 0) + count

    def evict_for(self, size: int) -> int:
        """Drop queued events from the head until ``size`` fits (drop_oldest); returns how many."""
        evicted = 0
        queue = self.queue
        while queue and not self.has_room(size):
            queue.popleft()
            self.queued_bytes -= self.sizes.popleft()
            self.head_seq += 1
            evicted += 1
        if evicted:
            self.refuse("queue_full", evicted)
        return evicted

    def force_append(self, event: UserEvent, size: int) -> None:
        """Append after the driver made room (drop_oldest, block)."""
        self.queue.append(event)
        self.sizes.append(size)
        self.queued_bytes += size
        self.enqueued += 1

    # -- the worker's side -------------------------------------------------------------

    def due(self, now: float) -> bool:
        """Whether a window should be taken now (``now`` is ``time.time()``)."""
        queue = self.queue
        if not queue:
            return False
        if self.closing or self.head_seq < self.flush_target:
            return True
        if len(queue) >= self.batch_size or self.queued_bytes >= self.max_request_bytes:
            return True
        # The event's own creation time stands in for its enqueue time: no clock read on the hot path.
        return now - queue[0].timestamp / 1000.0 >= self.settings.flush_interval

    def wait_time(self, now: float) -> float:
        """How long a worker may sleep before the head of the queue becomes due."""
        interval = self.settings.flush_interval
        if not self.queue:
            return interval
        age = now - self.queue[0].timestamp / 1000.0
        return min(interval, max(0.001, interval - age))

    def take(self, now: float) -> Window | None:
        """The next window if one is due: up to ``batch_size`` events within the request byte limit."""
        if not self.due(now):
            return None
        queue, sizes = self.queue, self.sizes
        limit = self.max_request_bytes
        events: list[UserEvent] = []
        nbytes = 0
        count = self.batch_size
        while queue and len(events) < count:
            size = sizes[0]
            if events and nbytes + size > limit:
                break
            events.append(queue.popleft())
            sizes.popleft()
            nbytes += size
        self.queued_bytes -= nbytes
        window = Window(self.head_seq, events, nbytes)
        self.head_seq += len(events)
        self.in_flight[window.first_seq] = window
        self.in_flight_events += len(events)
        return window

    def settle(self, window: Window, count: int, *, delivered: bool, reason: str | None = None) -> None:
        """Record that ``count`` events of ``window`` were delivered or dropped for ``reason``."""
        count = min(count, window.remaining)
        window.remaining -= count
        self.in_flight_events -= count
        if delivered:
            self.delivered += count
        else:
            key = reason or "internal_error"
            self.dropped[key] = self.dropped.get(key, 0) + count
        if window.remaining <= 0:
            self.in_flight.pop(window.first_seq, None)

    def record_attempt(self, *, retry: bool, ok: bool, error: str | None, now: float) -> None:
        """Count one request attempt and remember the last success or error."""
        self.requests += 1
        if retry:
            self.retried += 1
        if ok:
            self.last_success = now
        else:
            self.last_error = error
            self.last_error_at = now

    def take_unreported(self) -> dict[str, int]:
        """Drops at ``process()`` since the last call, for one log line and one notification."""
        if not self.unreported:
            return {}
        drops, self.unreported = self.unreported, {}
        return drops

    # -- flush and close ---------------------------------------------------------------

    @property
    def tail_seq(self) -> int:
        """Sequence number the next accepted event will get."""
        return self.head_seq + len(self.queue)

    def request_flush(self) -> int:
        """Make every queued event due now; returns the target a flush waits for."""
        target = self.tail_seq
        self.flush_target = max(self.flush_target, target)
        return target

    def pending_before(self, target: int) -> int:
        """Events with a sequence number below ``target`` that are neither delivered nor dropped."""
        queued = max(0, min(len(self.queue), target - self.head_seq))
        flying = sum(w.remaining for first, w in self.in_flight.items() if first < target)
        return queued + flying

    def discard_queue(self, reason: str) -> int:
        """Drop everything still queued (close ran out of time); returns how many."""
        count = len(self.queue)
        if count:
            self.head_seq += count
            self.queue.clear()
            self.sizes.clear()
            self.queued_bytes = 0
            self.dropped[reason] = self.dropped.get(reason, 0) + count
            self.unreported[reason] = self.unreported.get(reason, 0) + count
        return count

    def snapshot(
        self, now: float, *, workers_alive: int = 0, worker_restarts: int = 0, spool: SpoolStats | None = None
    ) -> DeliveryStats:
        """A consistent :class:`DeliveryStats` (``now`` is ``time.time()``)."""
        oldest = 0.0
        if self.queue:
            oldest = max(0.0, now - self.queue[0].timestamp / 1000.0)
        spooled = {}
        if spool is not None:
            spooled = {
                "spooled_events": spool.events,
                "spooled_bytes": spool.bytes,
                "spool_segments": spool.segments,
                "spool_oldest_age": spool.oldest_age,
                "replayed": spool.replayed,
                "spool_degraded": spool.degraded_events,
                "spool_healthy": not spool.degraded,
            }
        return DeliveryStats(
            **spooled,  # type: ignore[arg-type]
            enqueued=self.enqueued + (spool.accepted if spool is not None else 0),
            dropped=freeze_counts(
                _add_counts(self.dropped, spool.dropped) if spool is not None else self.dropped
            ),
            delivered=self.delivered,
            retried=self.retried,
            requests=self.requests,
            queued_events=len(self.queue),
            queued_bytes=self.queued_bytes,
            in_flight=self.in_flight_events,
            oldest_age=oldest,
            last_error=self.last_error,
            last_error_at=self.last_error_at,
            last_success=self.last_success,
            workers_alive=workers_alive,
            worker_restarts=worker_restarts,
        )
