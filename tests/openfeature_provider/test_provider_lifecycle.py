"""Provider shutdown within its deadline, and async evaluations with the asyncio processor."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import pytest
from of_helpers import datafile, set_provider_and_wait
from openfeature import api
from openfeature.evaluation_context import EvaluationContext

import flagstream
from flagstream.collector import Collector
from flagstream.openfeature import FlagstreamProvider

pytestmark = pytest.mark.timeout(60)


class HeldDispatcher:
    """A network that never answers until released (released at the end of the test)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def dispatch_event(self, log_event: Any) -> None:
        self.entered.set()
        self.release.wait(30)


def test_shutdown_returns_by_its_deadline_when_the_network_hangs_and_says_what_was_left(caplog):
    caplog.set_level(logging.WARNING, logger="flagstream")
    held = HeldDispatcher()
    processor = flagstream.BatchEventProcessor(held, batch_size=1, flush_interval=0.01)
    client = flagstream.Optimizely(json.dumps(datafile()), event_processor=processor)
    set_provider_and_wait(FlagstreamProvider(client, shutdown_timeout=0.5))
    try:
        for n in range(5):
            api.get_client().get_boolean_value("banner", False, EvaluationContext(f"user_{n}"))
        assert held.entered.wait(10)
        started = time.monotonic()
        api.shutdown()
        assert time.monotonic() - started < 2.5  # 0.5 s of budget, with room for a loaded machine
        assert any("were not delivered within 0.5 s" in r.getMessage() for r in caplog.records)
        stats = processor.stats()
        assert stats.delivered == 0
        assert stats.dropped.get("shutdown", 0) + stats.in_flight == 5
    finally:
        held.release.set()


def test_async_evaluations_with_the_asyncio_processor_deliver_every_impression():
    with Collector() as collector:

        async def main() -> int:
            processor = flagstream.AsyncBatchEventProcessor(flush_interval=0.05)
            client = flagstream.Optimizely(
                json.dumps(datafile()), event_processor=processor, event_endpoint=collector.events_url
            )
            # The asyncio processor is closed by the application (aclose), not by the provider.
            set_provider_and_wait(FlagstreamProvider(client, close_client=False))
            features = api.get_client()
            for n in range(10):
                details = await features.get_boolean_details_async(
                    "banner", False, EvaluationContext(f"user_{n}")
                )
                assert details.error_code is None
            report = await processor.aclose(5)
            assert report.completed
            api.shutdown()
            client.close()
            return processor.stats().delivered

        assert asyncio.run(main()) == 10  # sendFlagDecisions: one impression per evaluation
        assert collector.event_count() == 10
