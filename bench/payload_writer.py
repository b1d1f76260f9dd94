"""The delivery worker's share: request bodies from user events, flagstream next to optimizely-sdk.

Each SDK's client makes its own user events for the same calls (``track`` and
``decide`` for new users with two attributes), captured before any JSON
exists. Then batches of 500 are turned into request bodies:

* flagstream: ``build_log_event`` (the byte writer the batch processor runs);
* flagstream dicts: ``params_of`` serialized with orjson, the readable
  definition of the same payload, to show what the byte writer saves;
* optimizely-sdk: ``EventFactory.create_log_event`` plus the ``json.dumps`` its
  dispatcher does before sending.

µs per event, median (and minimum) of 9 runs. On the 2-core machine this
time is taken from the application's thread, which shares the interpreter
lock with the worker. Usage: ``python bench/payload_writer.py [EVENTS]``.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from _common import BASIC_DATAFILE, machine_info

import flagstream
from flagstream import _json
from flagstream.events.payload import build_log_event, params_of

ATTRIBUTES = {"age": 30, "country": "de"}
BATCH = 500
RUNS = 9


class Capture:
    """An event processor (for either SDK) that keeps the user events it is given."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def process(self, user_event: Any) -> None:
        self.events.append(user_event)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass

    def stop(self) -> None:
        pass


def _make(client: Any, op: str, n: int) -> None:
    for i in range(n):
        if op == "track":
            client.track("purchase", f"user-{i}", ATTRIBUTES)
        else:
            client.create_user_context(f"user-{i}", ATTRIBUTES).decide("banner")


def _flagstream_events(op: str, n: int) -> list[Any]:
    capture = Capture()
    _make(flagstream.Optimizely(BASIC_DATAFILE, event_processor=capture), op, n)
    return capture.events


def _optimizely_events(op: str, n: int) -> list[Any]:
    from optimizely import optimizely  # test-only dependency, imported only here

    logging.getLogger("optimizely").setLevel(logging.CRITICAL)
    capture = Capture()
    _make(optimizely.Optimizely(BASIC_DATAFILE, event_processor=capture), op, n)
    return capture.events


def _optimizely_writer() -> Callable[[Sequence[Any]], object]:
    from optimizely.event.event_factory import EventFactory
    from optimizely.logger import NoOpLogger

    logger = NoOpLogger()

    def write(batch: Sequence[Any]) -> object:
        log_event = EventFactory.create_log_event(list(batch), logger)
        return json.dumps(log_event.params)

    return write


def _time(write: Callable[[Sequence[Any]], object], events: list[Any]) -> tuple[float, float]:
    batches = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
    runs = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for batch in batches:
            write(batch)
        runs.append((time.perf_counter() - start) / len(events) * 1e6)
    return statistics.median(runs), min(runs)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(f"# request bodies from user events, {n} events in batches of {BATCH}; {machine_info()}")
    print(f"{'op':7} {'writer':22} {'median us/event':>16} {'min':>7}   optimizely-sdk / this")
    for op in ("track", "decide"):
        ours = _flagstream_events(op, n)
        theirs = _optimizely_events(op, n)
        assert len(ours) == len(theirs) == n, (op, len(ours), len(theirs))
        results = {
            "optimizely-sdk": _time(_optimizely_writer(), theirs),
            "flagstream dicts": _time(lambda batch: _json.dumps(params_of(batch)), ours),
            "flagstream": _time(lambda batch: build_log_event(batch).body, ours),
        }
        reference = results["optimizely-sdk"][0]
        for name, (median, fastest) in results.items():
            print(f"{op:7} {name:22} {median:16.2f} {fastest:7.2f}   {reference / median:5.1f}x")


if __name__ == "__main__":
    main()
