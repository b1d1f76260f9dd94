"""Run an Event API server in its own process for benchmarks.

Two servers, chosen by ``CollectorProcess(server=...)``:

* ``"collector"``: ``flagstream.collector.Collector`` (validates every payload,
  stores it in SQLite, de-duplicates); what ``make demo`` and the tests use.
* ``"sink"``: a lean counting server (keep-alive HTTP/1.1, reads each body,
  counts the distinct ``"uuid"`` values in it with one regular expression,
  answers 204). On a 2-core machine the server's CPU is taken from the SDK
  being measured; the sink takes about a tenth of the collector's, so the
  numbers measured against it are closer to the SDK's own cost. Both SDKs
  are always measured against the same server in one run.

A server in the benchmark's process would compete for the GIL with the
code being measured, so it runs in a child process. Commands on stdin, one per
line: ``wait N TIMEOUT`` answers with the ``time.monotonic()`` at which N unique
events were stored (CLOCK_MONOTONIC is shared by all processes of the machine),
or ``-1``; ``settle N STALL MAX`` waits until N events are stored, or no new
event came for STALL seconds, or MAX seconds passed, and answers
``COUNT LAST_PROGRESS_MONOTONIC``; ``count`` answers the unique event count;
``quit`` stops it.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from typing import Any

__all__ = ["CollectorProcess"]


class _Sink:
    """The lean counting server: the same ``wait_for_events``/``event_count`` as ``Collector``."""

    _UUID = re.compile(rb'"uuid":\s*"([^"]*)"')

    def __init__(self, latency: float) -> None:
        self._latency = latency
        self._uuids: set[bytes] = set()
        self._changed = threading.Condition()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.events_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1/events"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            connection, _ = self._listener.accept()
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        reader = connection.makefile("rb")
        with connection, reader:
            while reader.readline():  # the request line; b"" when the client closed
                length = 0
                while (header := reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                uuids = self._UUID.findall(reader.read(length))
                if self._latency:
                    time.sleep(self._latency)
                connection.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                with self._changed:
                    self._uuids.update(uuids)
                    self._changed.notify_all()

    def event_count(self) -> int:
        return len(self._uuids)

    def wait_for_events(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self._uuids) >= count, timeout)


def _serve(latency: float, server: str) -> None:
    if server == "sink":
        _commands(_Sink(latency))
        return
    from flagstream.collector import Collector, FaultConfig

    with Collector(faults=FaultConfig(latency=latency)) as collector:
        _commands(collector)


def _commands(collector: Any) -> None:
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
    def __init__(self, latency: float = 0.0, server: str = "collector") -> None:
        """``latency``: seconds the server waits before answering each request (a network RTT);
        ``server``: ``"collector"`` or ``"sink"`` (see the module docstring)."""
        if server not in ("collector", "sink"):
            raise ValueError(f"server must be 'collector' or 'sink', got {server!r}")
        self._proc = subprocess.Popen(
            [sys.executable, __file__, str(latency), server],
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
    _serve(
        float(sys.argv[1]) if len(sys.argv) > 1 else 0.0, sys.argv[2] if len(sys.argv) > 2 else "collector"
    )
