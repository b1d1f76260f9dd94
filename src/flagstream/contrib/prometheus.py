"""A ``prometheus_client`` collector of the delivery numbers (extra ``prometheus``).

    from prometheus_client import REGISTRY
    from flagstream.contrib.prometheus import DeliveryCollector

    REGISTRY.register(DeliveryCollector(client))

Each scrape reads ``stats()`` once, so the numbers of one scrape agree with
each other. Names and meanings are those of ``prometheus_text()``:
``flagstream_delivery_{enqueued,delivered,requests,retried}_total``,
``flagstream_delivery_dropped_total{reason=...}`` (every reason, zeros
included), and the gauges ``flagstream_delivery_{queued_events,queued_bytes,
in_flight_events,oldest_age_seconds,workers_alive}``, plus
``flagstream_delivery_last_success_timestamp_seconds`` once a request succeeded.
``labels`` adds constant labels (to tell several clients apart).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

try:
    import prometheus_client  # noqa: F401  (the extra's library: a clear message when it is missing)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the surface test
    raise ImportError(
        f"{__name__} needs the prometheus extra: pip install 'flagstream[prometheus]' ({exc})"
    ) from exc

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from flagstream.contrib._stats import COUNTERS, DROPPED, GAUGES, dropped_by_reason, stats_source

__all__ = ["DeliveryCollector"]


class DeliveryCollector(Collector):
    """Publishes a client's (or a batch processor's) delivery counters and gauges."""

    def __init__(
        self, source: Any, *, prefix: str = "flagstream_delivery", labels: Mapping[str, str] | None = None
    ) -> None:
        self._stats = stats_source(source)
        self._prefix = prefix
        self._label_names = list(labels or {})
        self._label_values = [str(v) for v in (labels or {}).values()]

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        names, values = self._label_names, self._label_values
        for number in COUNTERS:
            counter = CounterMetricFamily(f"{self._prefix}_{number.name}", number.help, labels=names)
            counter.add_metric(values, number.read(stats))
            yield counter
        dropped = CounterMetricFamily(
            f"{self._prefix}_{DROPPED.name}", DROPPED.help, labels=[*names, "reason"]
        )
        for reason, count in sorted(dropped_by_reason(stats).items()):
            dropped.add_metric([*values, reason], count)
        yield dropped
        for number in GAUGES:
            gauge = GaugeMetricFamily(f"{self._prefix}_{number.name}", number.help, labels=names)
            gauge.add_metric(values, number.read(stats))
            yield gauge
        if stats.last_success is not None:
            gauge = GaugeMetricFamily(
                f"{self._prefix}_last_success_timestamp_seconds",
                "When a request last succeeded.",
                labels=names,
            )
            gauge.add_metric(values, stats.last_success)
            yield gauge
