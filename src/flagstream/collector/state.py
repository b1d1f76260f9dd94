"""What the collector's request threads share: storage, faults, counters and logs.

Counters are plain integers updated under one lock; the request log and the
raw bodies are bounded so a long-running collector does not grow without limit.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

from flagstream.collector.faults import FaultConfig, FaultInjector
from flagstream.collector.results import ExperimentResult, compute_results
from flagstream.collector.schema import DecodedBatch, decode_batch
from flagstream.collector.storage import Store
from flagstream.collector.workers import DecodeWorkers

__all__ = ["REQUEST_LOG_LIMIT", "CollectorState", "RequestRecord"]

REQUEST_LOG_LIMIT = 100_000

# (HTTP status, or 0 when the connection was reset without an answer; time.monotonic(); events in the body)
RequestRecord = tuple[int, float, int]


class CollectorState:
    """Shared by every request thread of one collector."""

    def __init__(self, db: str, faults: FaultConfig, token: str | None, keep_raw_bodies: bool) -> None:
        self.store = Store(db)
        self.faults = FaultInjector(faults)
        self.token = token
        self.keep_raw_bodies = keep_raw_bodies
        self.stopping = threading.Event()
        self.started_at = time.time()
        self._lock = threading.Lock()
        self._stored = threading.Condition(self._lock)
        self._log: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_LIMIT)
        self._bodies: deque[bytes] = deque(maxlen=REQUEST_LOG_LIMIT)
        self.responses: Counter[int] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.events_received = 0
        self.bytes_received = 0
        self.payload_errors = 0
        # (data version, results) per experiment filter: the page and /api/results reuse a
        # computation until new events are indexed.
        self.results_cache: dict[str | None, tuple[int, list[ExperimentResult]]] = {}
        self.workers: DecodeWorkers | None = None

    def start_workers(self, n: int) -> None:
        """Decode large bodies in ``n`` worker processes from now on (see :mod:`.workers`)."""
        if n > 0 and self.workers is None:
            workers = DecodeWorkers(n)
            workers.start()
            self.workers = workers

    def decode(self, body: bytes) -> DecodedBatch:
        """Decode and validate one body, in a worker when there are some; raises ``PayloadError``."""
        workers = self.workers
        return decode_batch(body) if workers is None else workers.decode(body)

    def record(self, status: int, n_events: int, body_bytes: int = 0) -> None:
        """Count one finished ``POST /v1/events`` request."""
        with self._lock:
            self._log.append((status, time.monotonic(), n_events))
            self.responses[status] += 1
            self.bytes_received += body_bytes
            self.events_received += n_events

    def record_body(self, body: bytes) -> None:
        """Keep one decompressed request body when the collector was asked to."""
        if self.keep_raw_bodies:
            with self._lock:
                self._bodies.append(body)

    def record_fault(self, kind: str) -> None:
        """Count one injected fault (``fail``, ``reset``)."""
        with self._lock:
            self.faults_injected[kind] += 1

    def record_payload_error(self) -> None:
        """Count one request rejected by validation."""
        with self._lock:
            self.payload_errors += 1

    def store_batch(self, body: bytes, decoded: DecodedBatch) -> int:
        """Store a validated body and wake :meth:`wait_for_events` waiters; returns the new events."""
        added = self.store.ingest(body, decoded)
        if added:
            with self._stored:
                self._stored.notify_all()
        return added

    def wait_for_events(self, n: int, timeout: float) -> bool:
        """Block until ``n`` unique events are stored or ``timeout`` passes."""
        with self._stored:
            return self._stored.wait_for(lambda: self.store.event_count >= n, timeout)

    def snapshot(self) -> dict[str, object]:
        """The counters at one instant (for ``/metrics`` and the page)."""
        with self._lock:
            return {
                "responses": dict(self.responses),
                "faults_injected": dict(self.faults_injected),
                "events_received": self.events_received,
                "bytes_received": self.bytes_received,
                "payload_errors": self.payload_errors,
                "events_stored": self.store.event_count,
                "duplicates": self.store.duplicate_count,
                "uptime_seconds": time.time() - self.started_at,
            }

    def results(self, experiment: str | None = None) -> list[ExperimentResult]:
        """Results of all experiments (or one), recomputed only when new events were indexed."""
        version = self.store.index()
        cached = self.results_cache.get(experiment)
        if cached is not None and cached[0] == version:
            return cached[1]
        results = compute_results(self.store, experiment)
        if len(self.results_cache) >= 32:
            self.results_cache.clear()
        self.results_cache[experiment] = (version, results)
        return results

    def request_log(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def raw_bodies(self) -> list[bytes]:
        """A copy of the kept request bodies, oldest first."""
        with self._lock:
            return list(self._bodies)

    def close(self, timeout: float = 2.0) -> bool:
        """Stop the decode workers and close the storage (idempotent); True when the workers ended in time."""
        clean = True
        if self.workers is not None:
            clean = self.workers.close(timeout)
        self.store.close()
        return clean
