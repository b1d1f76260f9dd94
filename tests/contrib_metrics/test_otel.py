"""flagstream.contrib.otel against the real OpenTelemetry SDK: metrics and span events read back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from metrics_helpers import DATAFILE
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flagstream
from flagstream.contrib.otel import EVENT_NAME, instrument_delivery, record_decisions
from flagstream.delivery.forwarding import ForwardingEventProcessor
from flagstream.delivery.stats import DROP_REASONS
from flagstream.errors import ConfigurationError
from flagstream.testing import CapturingEventDispatcher


def read(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], float]]]:
    """Every data point by metric name: (attributes, value)."""
    out: dict[str, list[tuple[dict[str, Any], float]]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "flagstream"
            for metric in scope.metrics:
                out[metric.name] = [(dict(p.attributes or {}), p.value) for p in metric.data.data_points]
    return out


def single(points: dict[str, list[tuple[dict[str, Any], float]]], name: str) -> float:
    [(attributes, value)] = points[f"flagstream.delivery.{name}"]
    assert attributes == {"client": "shop"}
    return value


def test_delivery_counters_and_queue_gauges_read_back_through_the_in_memory_reader(scenario):
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instrument_delivery(scenario.client, meter_provider=provider, attributes={"client": "shop"})

    scenario.hold_a_full_queue()
    held, stats = read(reader), scenario.stats()
    assert single(held, "enqueued") == stats.enqueued == 25
    assert single(held, "queued_events") == stats.queued_events == 20
    assert single(held, "queued_bytes") == stats.queued_bytes > 0
    assert single(held, "in_flight_events") == stats.in_flight == 5
    assert single(held, "delivered") == 0
    assert 0 < single(held, "oldest_age_seconds") <= stats.oldest_age
    dropped = {a["reason"]: v for a, v in held["flagstream.delivery.dropped"]}
    assert dropped == dict.fromkeys(DROP_REASONS, 0) | {"queue_full": 10}

    scenario.deliver_all()
    delivered, stats = read(reader), scenario.stats()
    assert single(delivered, "delivered") == stats.delivered == 25 == scenario.collector.event_count()
    assert single(delivered, "requests") == stats.requests == 5
    assert single(delivered, "queued_events") == 0
    assert single(delivered, "workers_alive") == 1
    provider.shutdown()


def test_instrument_delivery_refuses_a_processor_without_stats():
    client = flagstream.Optimizely(
        DATAFILE, event_processor=ForwardingEventProcessor(CapturingEventDispatcher())
    )
    with pytest.raises(ConfigurationError, match="no stats"):
        instrument_delivery(client, meter_provider=MeterProvider())
    client.close()


@pytest.fixture
def tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_decisions_are_span_events_with_the_semantic_convention_attributes(tracing):
    provider, exporter = tracing
    client = flagstream.Optimizely(
        DATAFILE, event_processor=ForwardingEventProcessor(CapturingEventDispatcher())
    )
    recorder = record_decisions(client, include_user_id=True, legacy_attributes=True)
    tracer = provider.get_tracer("shop")
    user = client.create_user_context("user_1", {"country": "de"})
    with tracer.start_as_current_span("GET /checkout"):
        decision = user.decide("banner")
        client.is_feature_enabled("banner", "user_2")
        client.activate("checkout_test", "vip", {"age": 30})
    user.decide("banner")  # no span is current: nothing is recorded, nothing fails
    [span] = exporter.get_finished_spans()
    assert [e.name for e in span.events] == [EVENT_NAME] * 3
    flag = dict(span.events[0].attributes or {})
    assert flag == {
        "feature_flag.key": "banner",
        "feature_flag.provider.name": "flagstream",
        "feature_flag.result.variant": decision.variation_key,
        "feature_flag.result.value": decision.enabled,
        "flagstream.rule_key": decision.rule_key,
        "feature_flag.version": "42",
        "feature_flag.context.id": "user_1",
        "feature_flag.provider_name": "flagstream",
        "feature_flag.variant": decision.variation_key,
    }
    experiment = dict(span.events[2].attributes or {})
    assert (experiment["feature_flag.key"], experiment["feature_flag.result.variant"]) == (
        "checkout_test",
        "treatment",
    )
    assert recorder.remove() is True
    with tracer.start_as_current_span("after"):
        user.decide("banner")
    assert [s.events for s in exporter.get_finished_spans()][-1] == ()
    client.close()


def test_openfeature_evaluations_are_span_events_too(tracing):
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    from flagstream.openfeature import FlagstreamProvider

    provider, exporter = tracing
    client = flagstream.Optimizely(
        DATAFILE, event_processor=ForwardingEventProcessor(CapturingEventDispatcher())
    )
    record_decisions(client)
    getattr(api, "set_provider_and_wait", api.set_provider)(
        FlagstreamProvider(client)
    )  # 0.8/0.9: set_provider waits
    try:
        with provider.get_tracer("shop").start_as_current_span("request"):
            details = api.get_client().get_boolean_details("banner", False, EvaluationContext("user_1"))
    finally:
        api.shutdown()
    [span] = exporter.get_finished_spans()
    [event] = span.events
    attributes = dict(event.attributes or {})
    assert attributes["feature_flag.key"] == "banner"
    assert attributes.get("feature_flag.result.variant") == details.variant
    assert "feature_flag.context.id" not in attributes  # the user id only when asked for
    assert json.dumps(attributes)  # plain values only
