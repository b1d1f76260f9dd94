"""flagstream.contrib.prometheus read back through a real CollectorRegistry."""

from __future__ import annotations

import pytest
from metrics_helpers import DATAFILE
from prometheus_client import CollectorRegistry, generate_latest

import flagstream
from flagstream.contrib.prometheus import DeliveryCollector
from flagstream.delivery.forwarding import ForwardingEventProcessor
from flagstream.delivery.stats import DROP_REASONS
from flagstream.errors import ConfigurationError
from flagstream.testing import CapturingEventDispatcher


def test_the_collector_publishes_the_numbers_of_stats(scenario):
    registry = CollectorRegistry()
    registry.register(DeliveryCollector(scenario.client, labels={"client": "shop"}))
    sample = registry.get_sample_value
    labels = {"client": "shop"}

    scenario.hold_a_full_queue()
    stats = scenario.stats()
    assert sample("flagstream_delivery_enqueued_total", labels) == stats.enqueued == 25
    assert sample("flagstream_delivery_queued_events", labels) == 20
    assert sample("flagstream_delivery_in_flight_events", labels) == 5
    assert sample("flagstream_delivery_queued_bytes", labels) == stats.queued_bytes
    for reason in DROP_REASONS:
        expected = 10 if reason == "queue_full" else 0
        assert sample("flagstream_delivery_dropped_total", {**labels, "reason": reason}) == expected
    assert sample("flagstream_delivery_last_success_timestamp_seconds", labels) is None

    scenario.deliver_all()
    stats = scenario.stats()
    assert sample("flagstream_delivery_delivered_total", labels) == 25 == scenario.collector.event_count()
    assert sample("flagstream_delivery_requests_total", labels) == stats.requests
    assert sample("flagstream_delivery_last_success_timestamp_seconds", labels) == stats.last_success


def test_the_exposition_has_the_names_of_prometheus_text(scenario):
    registry = CollectorRegistry()
    registry.register(DeliveryCollector(scenario.client.event_processor))
    scenario.deliver_all()
    text = generate_latest(registry).decode()

    def names(exposition: str) -> set[str]:
        return {line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE")}

    ours = names(scenario.client.event_processor.prometheus_text())
    assert ours <= names(text)


def test_a_processor_without_stats_is_refused():
    client = flagstream.Optimizely(
        DATAFILE, event_processor=ForwardingEventProcessor(CapturingEventDispatcher())
    )
    with pytest.raises(ConfigurationError):
        DeliveryCollector(client)
    client.close()
