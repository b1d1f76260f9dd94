"""What ``BatchEventProcessor.process()`` costs the caller, next to optimizely-sdk's ``process()``.

Prebuilt user events go into each processor from a tight loop; the dispatcher
does nothing, so only the caller's share is measured. Two conditions:
``idle`` (the worker is asleep: a batch never fills during the loop) and
``busy`` (default batch size: the worker serializes while the caller runs,
so both share the GIL). Reports mean and median ns per call, median of 5 runs;
an empty loop shows the timer's own cost. The mean includes time the caller
waited for the GIL or the CPU (other processes on a shared machine).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.delivery.factories import context, conversion, impression

from flagstream.delivery.processor import BatchEventProcessor

N = 50_000


class NullDispatcher:
    def dispatch_event(self, log_event):
        pass


def run_flagstream(events, busy: bool) -> tuple[float, float]:
    options = {} if busy else {"batch_size": 10 * N, "flush_interval": 3600.0, "max_queue_events": 10 * N}
    processor = BatchEventProcessor(NullDispatcher(), **options)
    lat = []
    clock = time.perf_counter_ns
    start = clock()
    for event in events:
        t = clock()
        processor.process(event)
        lat.append(clock() - t)
    mean = (clock() - start) / len(events)
    processor.close(timeout=10)
    return mean, statistics.median(lat)


def run_optimizely(kind: str) -> tuple[float, float]:
    import queue

    from optimizely import entities
    from optimizely.event.event_processor import BatchEventProcessor as OptBatch
    from optimizely.event.user_event import ConversionEvent, EventContext

    del kind
    ctx = EventContext("12001", "111001", "42", False, "US")
    event = entities.Event(id="e1", key="purchase", experimentIds=[])
    events = [ConversionEvent(ctx, event, f"user-{i}", [], None) for i in range(N)]
    processor = OptBatch(
        NullDispatcher(), batch_size=100, flush_interval=0.1, event_queue=queue.Queue(), start_on_init=True
    )
    lat = []
    clock = time.perf_counter_ns
    start = clock()
    for event in events:
        t = clock()
        processor.process(event)
        lat.append(clock() - t)
    mean = (clock() - start) / N
    processor.stop()
    return mean, statistics.median(lat)


def run_empty() -> tuple[float, float]:
    lat = []
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(N):
        t = clock()
        lat.append(clock() - t)
    return (clock() - start) / N, statistics.median(lat)


def main() -> None:
    ctx = context("http://127.0.0.1:9/v1/events")
    rows = [("empty loop (timer overhead)", [run_empty() for _ in range(5)])]
    for label, make in (("conversion", conversion), ("impression", impression)):
        for busy in (False, True):
            runs = [run_flagstream([make(ctx) for _ in range(N)], busy) for _ in range(5)]
            rows.append((f"flagstream {label} {'busy' if busy else 'idle'}", runs))
    rows.append(("optimizely-sdk conversion (batch 100)", [run_optimizely("conversion") for _ in range(5)]))
    print(f"# process() cost per call, {N} events, median of 5 runs (ns, timer overhead included)")
    for label, runs in rows:
        mean = statistics.median(r[0] for r in runs)
        p50 = statistics.median(r[1] for r in runs)
        print(f"{label:42} mean {mean:8.0f} ns   p50 {p50:8.0f} ns")


if __name__ == "__main__":
    main()
