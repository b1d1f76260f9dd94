"""What ``max_in_flight`` buys: delivery throughput against a server with a round-trip delay.

The collector (in its own process) waits ``latency`` seconds before answering
each request, as the real Event API's network round trip does. Prebuilt user
events go into a ``BatchEventProcessor`` from a tight loop; we time until the
collector has all of them, for several ``max_in_flight`` values, interleaved,
median of ``REPS`` runs. Usage: ``python bench/delivery_inflight.py [latency]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from delivery_collector import CollectorProcess  # noqa: E402
from tests.delivery.factories import context, conversion  # noqa: E402

from flagstream.delivery.processor import BatchEventProcessor  # noqa: E402

N = 50_000
REPS = 3
IN_FLIGHT = (1, 2, 4, 8, 16)


def main() -> None:
    latency = float(sys.argv[1]) if len(sys.argv) > 1 else 0.05
    results: dict[int, list[float]] = {k: [] for k in IN_FLIGHT}
    total = 0
    with CollectorProcess(latency=latency) as collector:
        ctx = context(collector.events_url)
        for _ in range(REPS):
            for in_flight in IN_FLIGHT:
                events = [conversion(ctx) for _ in range(N)]
                processor = BatchEventProcessor(max_in_flight=in_flight)
                start = time.monotonic()
                for event in events:
                    processor.process(event)
                total += N
                done = collector.wait_for(total, 120)
                assert done is not None, "delivery did not finish"
                results[in_flight].append(N / (done - start))
                processor.close(timeout=5)
    print(f"# {N} track events, batch_size 500, server latency {latency * 1000:.0f} ms, median of {REPS}")
    for in_flight, runs in results.items():
        print(f"max_in_flight={in_flight}: {statistics.median(runs):9,.0f} events/s")


if __name__ == "__main__":
    main()
