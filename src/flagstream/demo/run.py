"""The demo pipeline: a local collector, the bundled shop datafile, simulated shoppers, delivery.

Everything runs in this process: the collector on a free loopback port with a
temporary database, and a :class:`flagstream.client.Optimizely` client with
its default delivery pointed at it (``event_endpoint=collector.events_url``).
The run ends by closing the client (which flushes), then compares what the
client produced with what the collector stored.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

from flagstream.collector import Collector, FaultConfig
from flagstream.collector.results import ExperimentResult
from flagstream.demo.shop import conversions_of, make_shopper

__all__ = ["DATAFILE_NAME", "Demo", "DemoOptions", "DemoSummary", "demo_datafile", "fault_phases"]

DATAFILE_NAME = "demo_shop_datafile.json"

_MIN_REQUESTS_PER_PHASE = 3

# Drops counted at process() time: those events never entered the queue but were produced.
_REFUSED = ("queue_full", "block_timeout", "too_large", "closed")


def demo_datafile() -> str:
    """The bundled sample datafile (a shop: two A/B tests, an exclusion group, a rollout with variables)."""
    return resources.files("flagstream.data").joinpath(DATAFILE_NAME).read_text(encoding="utf-8")


def fault_phases(seed: int) -> list[tuple[float, FaultConfig]]:
    """``--faults``: 500s, then 429s with Retry-After, then only latency (from a share of users on,
    each phase lasting at least a few requests).

    With the default seed the very first request fails, so even a tiny run shows a retry.
    """
    return [
        (0.0, FaultConfig(fail_rate=0.25, status=500, latency=0.01, seed=seed + 1)),
        (0.35, FaultConfig(fail_rate=0.25, status=429, retry_after=1, latency=0.01, seed=seed + 2)),
        (0.7, FaultConfig(latency=0.03, seed=seed + 3)),
    ]


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What ``flagstream demo`` was asked for."""

    users: int = 20_000
    faults: bool = False
    seed: int = 7
    host: str = "127.0.0.1"
    port: int = 0
    close_timeout: float = 90.0


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """How the delivery went: the client's counters next to what the collector stored."""

    users: int
    produced: int
    delivered: int
    retried: int
    requests: int
    dropped: Mapping[str, int]
    stored: int
    duplicates: int
    faults_injected: Mapping[str, int]
    simulate_seconds: float
    total_seconds: float
    url: str
    notes: tuple[str, ...] = field(default=())

    @property
    def dropped_total(self) -> int:
        """Events dropped, whatever the reason."""
        return sum(self.dropped.values())

    @property
    def events_per_second(self) -> float:
        """Delivered events per second, from the first decision to the end of the flush."""
        return self.delivered / self.total_seconds if self.total_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Every produced event arrived at the collector, none dropped."""
        return self.produced > 0 and self.stored == self.produced and self.dropped_total == 0


ProgressCallback = Callable[[int, Any], None]


class Demo:
    """One demo run; a context manager that owns the collector and its temporary database."""

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self._tmp = tempfile.TemporaryDirectory(prefix="flagstream-demo-")
        faults = fault_phases(options.seed)[0][1] if options.faults else FaultConfig()
        self.collector = Collector(
            host=options.host, port=options.port, db=str(Path(self._tmp.name) / "demo.db"), faults=faults
        )

    def __enter__(self) -> Demo:
        self.collector.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the collector and remove the temporary database."""
        self.collector.stop()
        self._tmp.cleanup()

    def run(self, on_progress: ProgressCallback | None = None) -> DemoSummary:
        """Simulate the shoppers through a flagstream client; returns the delivery summary."""
        from flagstream.client import Optimizely  # noqa: PLC0415 - keeps `flagstream --help` fast

        options = self.options
        phases = fault_phases(options.seed)[1:] if options.faults else []
        phase_start = 0
        rng = random.Random(options.seed)
        client = Optimizely(demo_datafile(), event_endpoint=self.collector.events_url)
        stats_of = getattr(client.event_processor, "stats", None)
        start = time.perf_counter()
        try:
            for index in range(options.users):
                if phases and index >= phases[0][0] * options.users:
                    # A phase ends only after it has answered a few requests, so every
                    # phase shows even in a small run on a busy machine.
                    served = len(self.collector.request_log())
                    if served - phase_start >= _MIN_REQUESTS_PER_PHASE:
                        self.collector.set_faults(phases.pop(0)[1])
                        phase_start = served
                shopper = make_shopper(index, rng)
                user = client.create_user_context(shopper.user_id, dict(shopper.attributes))
                if user is None:  # only for an invalid user id or datafile; the bundled one is valid
                    continue
                decisions = user.decide_all()
                variations = {flag: d.variation_key for flag, d in decisions.items()}
                for key, tags in conversions_of(shopper, variations, rng):
                    user.track_event(key, tags)
                if on_progress is not None and (index % 250 == 249 or index == options.users - 1):
                    on_progress(index + 1, stats_of() if callable(stats_of) else None)
            simulated = time.perf_counter() - start
        finally:
            client.close(options.close_timeout)
        total = time.perf_counter() - start
        stats = stats_of() if callable(stats_of) else None
        return self._summary(stats, simulated, total)

    def _summary(self, stats: Any, simulated: float, total: float) -> DemoSummary:
        dropped: Mapping[str, int] = dict(getattr(stats, "dropped", {}) or {})
        enqueued = int(getattr(stats, "enqueued", 0))
        produced = enqueued + sum(dropped.get(reason, 0) for reason in _REFUSED)
        # Delivered events were answered 204; the collector has them (a 204 means stored).
        self.collector.wait_for_events(produced, timeout=5.0)
        counters = self.collector.state.snapshot()
        faults = counters["faults_injected"]
        return DemoSummary(
            users=self.options.users,
            produced=produced,
            delivered=int(getattr(stats, "delivered", 0)),
            retried=int(getattr(stats, "retried", 0)),
            requests=int(getattr(stats, "requests", 0)),
            dropped=dropped,
            stored=self.collector.event_count(),
            duplicates=self.collector.duplicate_count(),
            faults_injected=dict(faults) if isinstance(faults, dict) else {},
            simulate_seconds=simulated,
            total_seconds=total,
            url=self.collector.url + "/",
        )

    def results(self) -> list[ExperimentResult]:
        """The results table computed from what the collector stored."""
        return self.collector.state.results()
