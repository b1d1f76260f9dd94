"""Fixtures of the metrics tests: a client whose delivery is held at a gate (see metrics_helpers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from metrics_helpers import DATAFILE, GatedDispatcher, Scenario

import flagstream
from flagstream.collector import Collector


@pytest.fixture
def scenario() -> Iterator[Scenario]:
    with Collector() as collector:
        dispatcher = GatedDispatcher()
        processor = flagstream.BatchEventProcessor(
            dispatcher, batch_size=5, flush_interval=0.01, max_queue_events=20, max_in_flight=1
        )
        client = flagstream.Optimizely(
            DATAFILE, event_processor=processor, event_endpoint=collector.events_url
        )
        yield Scenario(client, dispatcher, collector)
        dispatcher.gate.set()
        client.close()
