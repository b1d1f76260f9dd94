"""Snapshots of a processor's state: ``DeliveryStats`` and ``FlushReport``.

Both are frozen values taken under the processor's lock, so their numbers
agree with each other. ``DeliveryStats.to_prometheus()`` renders the Prometheus
text exposition format for users who scrape metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["DROP_REASONS", "DeliveryStats", "FlushReport", "freeze_counts"]

#: Every reason an event can be dropped for (keys of ``dropped``).
DROP_REASONS = (
    "queue_full",  # the queue was at its event or byte bound (drop_newest / drop_oldest)
    "block_timeout",  # overflow="block" and no room came within block_timeout
    "too_large",  # one event alone is above the per-request byte limit
    "rejected",  # the server answered a non-retryable 4xx for this event alone
    "retry_exhausted",  # attempts or the batch deadline ran out
    "shutdown",  # still queued when close() or the exit hook ran out of time
    "closed",  # process() after close()
    "internal_error",  # an unexpected error while building or sending (logged)
    "spool_cap",  # the spool directory was full: its oldest segment was removed, or (drop_newest) the event refused
    "spool_age",  # spooled for longer than the spool's max_age
    "spool_corrupt",  # a damaged record or an unreadable segment in the spool
    "spool_disk_error",  # a spooled segment could not be read back
)

_EMPTY: Mapping[str, int] = MappingProxyType({})


def freeze_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    """A read-only copy of a reason -> count mapping."""
    return MappingProxyType(dict(counts)) if counts else _EMPTY


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """Counters since the processor started (or since a fork, in the child).

    ``enqueued`` counts events accepted by ``process()``; every one of them is,
    at any time, exactly one of delivered, dropped after acceptance, queued, or
    in flight. ``dropped`` also counts events refused at ``process()``.
    ``retried`` counts request attempts after the first. Ages are in seconds;
    ``last_success`` and ``last_error_at`` are ``time.time()`` values.

    With a spool: ``spooled_events`` are this process's events on disk and not
    yet settled (queued there or in flight), ``spooled_bytes`` and
    ``spool_segments`` describe the whole directory, ``replayed`` counts events
    of stopped processes delivered by this one (not in ``delivered``, and their
    drops are in ``dropped``), and ``spool_degraded`` counts events kept in
    memory because the spool could not be written. ``spool_healthy`` is
    ``None`` without a spool.
    """

    enqueued: int = 0
    delivered: int = 0
    retried: int = 0
    requests: int = 0
    dropped: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    queued_events: int = 0
    queued_bytes: int = 0
    in_flight: int = 0
    oldest_age: float = 0.0
    last_error: str | None = None
    last_error_at: float | None = None
    last_success: float | None = None
    workers_alive: int = 0
    worker_restarts: int = 0
    spooled_events: int = 0
    spooled_bytes: int = 0
    spool_segments: int = 0
    spool_oldest_age: float = 0.0
    replayed: int = 0
    spool_degraded: int = 0
    spool_healthy: bool | None = None

    @property
    def dropped_total(self) -> int:
        """All drops, whatever the reason."""
        return sum(self.dropped.values())

    def to_prometheus(self, prefix: str = "flagstream_delivery") -> str:
        """The Prometheus text exposition of these counters and gauges."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {prefix}_{name} {help_text}")
            lines.append(f"# TYPE {prefix}_{name} {kind}")
            lines.extend(f"{prefix}_{name}{labels} {value:g}" for labels, value in samples)

        metric("enqueued_total", "counter", "Events accepted by process().", [("", self.enqueued)])
        metric("delivered_total", "counter", "Events the server accepted.", [("", self.delivered)])
        metric("requests_total", "counter", "Event API requests attempted.", [("", self.requests)])
        metric("retried_total", "counter", "Request attempts after the first.", [("", self.retried)])
        reasons = dict.fromkeys(DROP_REASONS, 0) | dict(self.dropped)
        metric(
            "dropped_total",
            "counter",
            "Events dropped, by reason.",
            [(f'{{reason="{reason}"}}', count) for reason, count in sorted(reasons.items())],
        )
        metric("queued_events", "gauge", "Events waiting in memory.", [("", self.queued_events)])
        metric("queued_bytes", "gauge", "Estimated bytes waiting in memory.", [("", self.queued_bytes)])
        metric("in_flight_events", "gauge", "Events being sent.", [("", self.in_flight)])
        metric("oldest_age_seconds", "gauge", "Age of the oldest queued event.", [("", self.oldest_age)])
        if self.spool_healthy is not None:
            metric(
                "spooled_events",
                "gauge",
                "Own events in the spool, not yet settled.",
                [("", self.spooled_events)],
            )
            metric("spool_bytes", "gauge", "Bytes in the spool directory.", [("", self.spooled_bytes)])
            metric(
                "spool_segments",
                "gauge",
                "Segment files in the spool directory.",
                [("", self.spool_segments)],
            )
            metric(
                "spool_oldest_age_seconds",
                "gauge",
                "Age of the oldest unsettled spool segment.",
                [("", self.spool_oldest_age)],
            )
            metric(
                "replayed_total", "counter", "Events of stopped processes delivered.", [("", self.replayed)]
            )
            metric(
                "spool_degraded_total",
                "counter",
                "Events kept in memory while the spool failed.",
                [("", self.spool_degraded)],
            )
            metric(
                "spool_healthy",
                "gauge",
                "1 while events are written to disk.",
                [("", int(self.spool_healthy))],
            )
        if self.last_success is not None:
            metric(
                "last_success_timestamp_seconds",
                "gauge",
                "When a request last succeeded.",
                [("", self.last_success)],
            )
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class FlushReport:
    """What ``flush(timeout)`` or ``close(timeout)`` achieved by the time it returned.

    ``delivered`` and ``dropped`` count what happened while the call waited;
    ``pending`` counts events covered by the call that were neither delivered nor
    dropped when it returned (after ``close`` they are lost: queued ones are
    counted as ``shutdown`` drops, in-flight ones may still complete).
    ``completed`` is true when nothing was pending. ``spooled`` (``close`` with
    a spool) counts events left on disk for the next process: not lost.
    """

    delivered: int = 0
    pending: int = 0
    dropped: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    elapsed: float = 0.0
    timed_out: bool = False
    spooled: int = 0

    @property
    def completed(self) -> bool:
        """True when every covered event was settled in time."""
        return self.pending == 0 and not self.timed_out

    @property
    def dropped_total(self) -> int:
        """All drops during the call, whatever the reason."""
        return sum(self.dropped.values())
