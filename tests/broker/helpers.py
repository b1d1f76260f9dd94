"""Producing events into Redis and reading back what the collector stored."""

from __future__ import annotations

import threading
from typing import Any

import redis
from tests.broker.servers import wait_until
from tests.collector.helpers import body_of, impression

from flagstream import _json
from flagstream.broker import RedisStreamDispatcher
from flagstream.broker.layout import StreamLayout
from flagstream.collector import Collector
from flagstream.delivery import BatchEventProcessor
from flagstream.events.log_event import LogEvent

LAYOUT = StreamLayout()
EVENTS = LAYOUT.events(0)
DLQ = LAYOUT.dlq(0)
ENDPOINT_URL = "https://logx.optimizely.com/v1/events"


def produce(url: str, users: list[str], *, batch_size: int = 20, **options: Any) -> RedisStreamDispatcher:
    """Queue one impression per user through a BatchEventProcessor into Redis; flush."""
    dispatcher = RedisStreamDispatcher(url, **options)
    processor = BatchEventProcessor(dispatcher, batch_size=batch_size, flush_interval=0.05, max_in_flight=2)
    for user in users:
        processor.process(impression(user))
    report = processor.close(timeout=20)
    assert report.pending == 0, report
    assert not report.dropped, report
    return dispatcher


class Producer:
    """Keeps producing impressions on a thread until stopped; remembers every user it queued."""

    def __init__(self, url: str, prefix: str, *, per_batch: int = 10, **options: Any) -> None:
        self.dispatcher = RedisStreamDispatcher(url, **options)
        self.processor = BatchEventProcessor(self.dispatcher, batch_size=per_batch, flush_interval=0.05)
        self.users: list[str] = []
        self.prefix = prefix
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Producer:
        self._thread.start()
        return self

    def _run(self) -> None:
        i = 0
        while not self._stop.wait(0.002):
            user = f"{self.prefix}-{i}"
            self.processor.process(impression(user))
            self.users.append(user)
            i += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        report = self.processor.close(timeout=30)
        assert report.pending == 0, report
        assert not report.dropped, report


def write_body(url: str, body: bytes, **options: Any) -> None:
    """One entry holding ``body`` exactly (for crafted payloads)."""
    dispatcher = RedisStreamDispatcher(url, **options)
    result = dispatcher.send(LogEvent(ENDPOINT_URL, body=body))
    assert result.ok, result
    dispatcher.close()


def poisoned_body(good: int) -> tuple[bytes, str]:
    """A body of ``good`` valid impressions plus one the collector refuses (400); the bad user's id."""
    body = _json.loads(body_of([impression(f"good-{i}") for i in range(good)]))
    bad = _json.loads(body_of([impression("bad-0")]))["visitors"][0]
    bad["snapshots"][0]["events"][0]["timestamp"] = "yesterday"  # the Event API wants an integer
    body["visitors"].insert(good // 2, bad)
    return _json.dumps(body), "bad-0"


def stored_visitors(collector: Collector) -> list[str]:
    """Visitor ids of every stored (unique) event."""
    return [row[0] for row in collector.state.store.query("SELECT visitor_id FROM events")]


def pending_of(client: redis.Redis, consumer: str | None = None, key: str = EVENTS) -> int:
    """Pending entries of the group (or of one consumer)."""
    if consumer is None:
        return int(client.xpending(key, "forwarders")["pending"])
    rows = client.xpending_range(key, "forwarders", "-", "+", 100_000, consumername=consumer)
    return len(rows)


def wait_delivered(collector: Collector, n: int, timeout: float) -> bool:
    return collector.wait_for_events(n, timeout)


__all__ = [
    "DLQ",
    "ENDPOINT_URL",
    "EVENTS",
    "LAYOUT",
    "Producer",
    "pending_of",
    "poisoned_body",
    "produce",
    "stored_visitors",
    "wait_delivered",
    "wait_until",
    "write_body",
]
