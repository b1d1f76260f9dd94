"""Helpers of the metrics tests: a client whose delivery is held at a gate, so its queue, drops and deliveries are known.

The gate dispatcher blocks every request until the test opens it, then sends
it for real (``HttpDispatcher``) to a local collector.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flagstream
from flagstream.collector import Collector

DATAFILE = (Path(__file__).parents[1] / "fixtures" / "basic_datafile.json").read_text()


class GatedDispatcher:
    def __init__(self) -> None:
        self.inner = flagstream.HttpDispatcher()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def dispatch_event(self, log_event: Any) -> None:
        self.entered.set()
        assert self.gate.wait(20), "the test never opened the gate"
        self.inner.dispatch_event(log_event)


@dataclass
class Scenario:
    client: flagstream.Optimizely
    dispatcher: GatedDispatcher
    collector: Collector

    def stats(self) -> flagstream.DeliveryStats:
        return self.client.event_processor.stats()

    def hold_a_full_queue(self) -> None:
        """One batch of 5 in flight (held), 20 queued, 10 dropped as queue_full."""
        for n in range(5):
            self.client.track("purchase", f"user_{n}")
        assert self.dispatcher.entered.wait(10)
        for n in range(30):
            self.client.track("purchase", f"user_{n}")

    def deliver_all(self) -> None:
        self.dispatcher.gate.set()
        report = self.client.flush(10)
        assert report is not None
        assert report.completed
