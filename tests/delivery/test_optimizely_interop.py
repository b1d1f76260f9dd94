"""Dispatchers interoperate both ways with optimizely-sdk 5.7 (the test-only oracle)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from optimizely import optimizely as optimizely_module
from optimizely.event_dispatcher import EventDispatcher as OptimizelyDispatcher
from tests.delivery.factories import context, conversion, impression

from flagstream.collector import Collector
from flagstream.delivery.http import HttpDispatcher
from flagstream.delivery.processor import BatchEventProcessor

DATAFILE = (Path(__file__).resolve().parents[1] / "fixtures" / "basic_datafile.json").read_text()


def test_optimizely_sdk_delivers_through_our_http_dispatcher():
    with Collector(keep_raw_bodies=True) as collector, HttpDispatcher(endpoint=collector.events_url) as ours:
        client = optimizely_module.Optimizely(datafile=DATAFILE, event_dispatcher=ours)
        assert client.is_valid
        for i in range(20):
            client.track("purchase", f"user-{i}")
        client.close()
        assert collector.wait_for_events(20, timeout=10)
        bodies = collector.raw_bodies()
    assert all(json.loads(body)["client_name"] == "python-sdk" for body in bodies)


def test_our_processor_delivers_through_optimizely_sdks_own_dispatcher():
    with Collector() as collector:
        ctx = context(collector.events_url)
        processor = BatchEventProcessor(OptimizelyDispatcher(), batch_size=50)
        for i in range(200):
            processor.process(conversion(ctx) if i % 2 else impression(ctx))
        assert processor.close(timeout=20).completed
        assert processor.stats().delivered == 200
        assert collector.event_count() == 200


def test_a_users_plain_dispatcher_that_raises_is_retried_then_counted():
    class Flaky:
        def __init__(self):
            self.calls = 0

        def dispatch_event(self, log_event):
            self.calls += 1
            if self.calls <= 2:
                raise OSError("network down")

    from flagstream.delivery.retry import RetryPolicy

    flaky = Flaky()
    processor = BatchEventProcessor(flaky, retry=RetryPolicy(backoff_base=0.001, backoff_max=0.01))
    processor.process(conversion())
    assert processor.close(timeout=5).completed
    assert processor.stats().delivered == 1
    assert flaky.calls == 3
    assert processor.stats().retried == 2


@pytest.mark.parametrize("bad", [object(), "dispatcher"])
def test_a_dispatcher_without_dispatch_event_is_a_configuration_error(bad):
    from flagstream.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        BatchEventProcessor(bad)
