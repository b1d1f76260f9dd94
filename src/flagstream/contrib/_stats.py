"""What the metrics integrations read: a ``stats()`` source and the numbers it gives.

Both the OpenTelemetry and the Prometheus integration publish the same
numbers under the same meaning; this module holds them once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from flagstream.delivery.stats import DROP_REASONS, DeliveryStats
from flagstream.errors import ConfigurationError

__all__ = ["COUNTERS", "DROPPED", "GAUGES", "Number", "dropped_by_reason", "stats_source"]


@dataclass(frozen=True, slots=True)
class Number:
    """One published number: its name (without prefix), help text, unit and how to read it."""

    name: str
    help: str
    unit: str
    read: Callable[[DeliveryStats], float]


COUNTERS: Final = (
    Number("enqueued", "Events accepted by process().", "{event}", lambda s: s.enqueued),
    Number("delivered", "Events the server accepted.", "{event}", lambda s: s.delivered),
    Number("requests", "Event API requests attempted.", "{request}", lambda s: s.requests),
    Number("retried", "Request attempts after the first.", "{request}", lambda s: s.retried),
)
#: ``dropped`` is a counter too, with one series per reason in :data:`DROP_REASONS`.
DROPPED: Final = Number("dropped", "Events dropped, by reason.", "{event}", lambda s: s.dropped_total)
GAUGES: Final = (
    Number("queued_events", "Events waiting in memory.", "{event}", lambda s: s.queued_events),
    Number("queued_bytes", "Estimated bytes waiting in memory.", "By", lambda s: s.queued_bytes),
    Number("in_flight_events", "Events being sent.", "{event}", lambda s: s.in_flight),
    Number("oldest_age_seconds", "Age of the oldest queued event.", "s", lambda s: s.oldest_age),
    Number("workers_alive", "Delivery workers running.", "{thread}", lambda s: s.workers_alive),
)


def stats_source(source: Any) -> Callable[[], DeliveryStats]:
    """``source.stats`` for a processor, or its ``event_processor.stats`` for a client.

    Raises ConfigurationError for anything that has neither (a processor that
    keeps no statistics, such as ``ForwardingEventProcessor``).
    """
    for candidate in (source, getattr(source, "event_processor", None)):
        stats = getattr(candidate, "stats", None)
        if callable(stats):
            return stats  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"{type(source).__name__} has no stats(): pass a flagstream client or a batch event processor"
    )


def dropped_by_reason(stats: DeliveryStats) -> dict[str, int]:
    """Every known reason with its count (0 included), plus any reason the processor added."""
    return dict.fromkeys(DROP_REASONS, 0) | dict(stats.dropped)
