"""Run ``flagstream.collector.Collector`` in its own process for benchmarks.

A collector in the benchmark's process would compete for the GIL with the
code being measured, so it runs in a child process. Commands on stdin, one per
line: ``wait N TIMEOUT`` answers with the ``time.monotonic()`` at which N unique
events were stored (CLOCK_MONOTONIC is shared by all processes of the machine),
or ``-1``; ``settle N STALL MAX`` waits until N events are stored, or no new
event came for STALL seconds, or MAX seconds passed, and answers
``COUNT LAST_PROGRESS_MONOTONIC``; ``count`` answers the unique event count;
``quit`` stops it.
"""

from __future__ import annotations

import subprocess
import sys
import time

__all__ = ["CollectorProcess"]


def _serve(latency: float) -> None:
    from flagstream.collector import Collector, FaultConfig

    with Collector(faults=FaultConfig(latency=latency)) as collector:
        print(collector.events_url, flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] == "quit":
                break
            if words[0] == "wait":
                ok = collector.wait_for_events(int(words[1]), float(words[2]))
                print(time.monotonic() if ok else -1, flush=True)
            elif words[0] == "settle":
                target, stall, limit = int(words[1]), float(words[2]), float(words[3])
                end = time.monotonic() + limit
                count, last = collector.event_count(), time.monotonic()
                while count < target and time.monotonic() < end:
                    collector.wait_for_events(count + 1, min(stall, max(0.0, end - time.monotonic())))
                    now_count = collector.event_count()
                    if now_count == count:
                        if time.monotonic() - last >= stall:
                            break
                        continue
                    count, last = now_count, time.monotonic()
                print(count, last, flush=True)
            elif words[0] == "count":
                print(collector.event_count(), flush=True)


class CollectorProcess:
    def __init__(self, latency: float = 0.0) -> None:
        """``latency``: seconds the collector waits before answering each request (a network RTT)."""
        self._proc = subprocess.Popen(
            [sys.executable, __file__, str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.events_url = self._proc.stdout.readline().strip()

    def _ask(self, line: str) -> str:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        return self._proc.stdout.readline().strip()

    def wait_for(self, n: int, timeout: float) -> float | None:
        """``time.monotonic()`` when the collector had ``n`` events, or None on timeout."""
        value = float(self._ask(f"wait {n} {timeout}"))
        return None if value < 0 else value

    def settle(self, n: int, stall: float, limit: float) -> tuple[int, float]:
        """``(count, monotonic time of the last new event)`` once n arrived or delivery stalled."""
        count, last = self._ask(f"settle {n} {stall} {limit}").split()
        return int(count), float(last)

    def count(self) -> int:
        return int(self._ask("count"))

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.write("quit\n")
            self._proc.stdin.close()
            self._proc.wait(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> CollectorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    _serve(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
