"""Issue 3's "what it must show", end to end over real HTTP on 127.0.0.1.

The collector (``flagstream.collector``) provides random faults and payload
validation; ``tests.servers`` provides content-based faults and servers that
never answer.
"""

from __future__ import annotations

import gc
import random
import threading
import time

import psutil
import pytest
from tests.delivery.factories import context, conversion, impression, uuids_of
from tests.servers.raw import RawServer
from tests.servers.sink import Sink

from flagstream.collector import Collector
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.delivery.retry import RetryPolicy
from flagstream.events.payload import build_log_event

pytestmark = pytest.mark.slow


def test_a_50000_event_burst_from_a_tight_loop_is_fully_delivered_with_defaults():
    with Collector() as collector:
        ctx = context(collector.events_url)
        events = [conversion(ctx) if i % 2 else impression(ctx) for i in range(50_000)]
        processor = BatchEventProcessor()
        try:
            for event in events:
                processor.process(event)
            assert collector.wait_for_events(50_000, timeout=60)
            assert processor.flush(timeout=10).completed  # the last answer may still be on its way
            stats = processor.stats()
        finally:
            processor.close(timeout=5)
        assert collector.event_count() == 50_000
        assert collector.duplicate_count() == 0
        assert (stats.enqueued, stats.delivered, stats.dropped_total) == (50_000, 50_000, 0)


def test_10pc_500s_and_10pc_429s_are_all_delivered_and_429_waits_honour_retry_after():
    rng = random.Random(3)
    lock = threading.Lock()

    def rule(body, n):
        with lock:
            draw = rng.random()
        if draw < 0.10:
            return 500, {}
        if draw < 0.20:
            return 429, {"Retry-After": "1"}
        return 204, {}

    with Sink(rule) as sink:
        ctx = context(sink.url)
        events = [conversion(ctx) for _ in range(6_000)]
        processor = BatchEventProcessor(batch_size=100, retry=RetryPolicy(backoff_base=0.05, backoff_max=0.5))
        for event in events:
            processor.process(event)
        report = processor.close(timeout=60)
        assert report.completed, report
        log = list(sink.log)

    delivered = [u for _, status, body, _ in log if status == 204 for u in uuids_of(body)]
    assert sorted(set(delivered)) == sorted(e.uuid for e in events)  # 100 % delivered
    statuses = [status for _, status, _, _ in log]
    assert statuses.count(429) >= 3
    assert statuses.count(500) >= 3
    # A retry resends the very same bytes: the wait after each 429 is measured per body.
    waits = []
    for i, (at, status, body, _) in enumerate(log):
        if status == 429:
            retry_at = next(t for t, _, b, _ in log[i + 1 :] if b == body)
            waits.append(retry_at - at)
    assert min(waits) >= 1.0, waits


def test_other_4xx_answers_are_never_retried():
    with Sink(lambda body, n: (403, {})) as sink:
        ctx = context(sink.url)
        dead = []
        processor = BatchEventProcessor(
            batch_size=8, dead_letter=lambda event, result: dead.append((event.uuid, result.status))
        )
        events = [conversion(ctx) for _ in range(8)]
        for event in events:
            processor.process(event)
        processor.close(timeout=10)
        bodies = [body for _, _, body, _ in sink.log]
    assert len(bodies) == len(set(bodies))  # no body was ever sent twice
    assert processor.stats().dropped == {"rejected": 8}
    assert sorted(dead) == sorted((e.uuid, 403) for e in events)


def test_an_outage_drops_exactly_what_exceeds_the_bounds_and_delivers_the_rest():
    """The server is down for 10 s while events keep coming (500/s), then comes back."""
    collector = Collector().start()
    port = collector.port
    collector.stop()  # down: connections are refused
    ctx = context(f"http://127.0.0.1:{port}/v1/events")
    processor = BatchEventProcessor(
        batch_size=100,
        max_queue_events=2_000,
        max_in_flight=2,
        # A short backoff cap only makes the test end sooner after the server is back.
        retry=RetryPolicy(backoff_base=0.05, backoff_max=0.3, max_attempts=1_000, deadline=60),
    )
    produced = 0
    tick = threading.Event()
    try:
        outage_end = time.monotonic() + 10.0
        while time.monotonic() < outage_end:
            for _ in range(50):
                processor.process(conversion(ctx))
            produced += 50
            assert processor.stats().queued_events <= 2_000
            tick.wait(0.1)
        with Collector(port=port) as back:
            report = processor.flush(timeout=30)
            assert report.completed, report
            stats = processor.stats()
            delivered_at_server = back.event_count()
    finally:
        processor.close(timeout=5)
    # 2 000 queued plus the windows of 100 the two workers held (retrying): the rest was dropped.
    assert produced >= 4_000
    assert 2_000 <= stats.enqueued <= 2_200  # depends on when the workers took their windows
    assert stats.delivered == stats.enqueued
    assert stats.dropped == {"queue_full": produced - stats.enqueued}
    assert delivered_at_server == stats.delivered
    assert stats.retried > 0


def test_memory_stays_under_the_byte_bound_plus_a_fixed_overhead_during_an_outage():
    byte_bound = 16 * 1024 * 1024
    ctx = context("http://127.0.0.1:9/v1/events")  # nothing listens on port 9: refused
    processor = BatchEventProcessor(
        max_queue_bytes=byte_bound,
        max_queue_events=10_000_000,
        retry=RetryPolicy(backoff_base=0.5, backoff_max=1.0),
    )
    gc.collect()
    me = psutil.Process()
    baseline = me.memory_info().rss
    peak = baseline
    produced = 0
    try:
        for i in range(120_000):
            processor.process(conversion(ctx, tags={"n": i, "note": "x" * 64}))
            produced += 1
            if i % 5_000 == 0:
                peak = max(peak, me.memory_info().rss)
        peak = max(peak, me.memory_info().rss)
        stats = processor.stats()
    finally:
        processor.close(timeout=1)
    assert stats.queued_bytes <= byte_bound
    assert stats.dropped["queue_full"] > 0
    assert stats.enqueued + stats.dropped["queue_full"] == produced  # every drop counted
    final = processor.stats()
    settled = final.delivered + final.dropped_total - final.dropped["queue_full"]
    assert settled + final.queued_events + final.in_flight == final.enqueued
    fixed_overhead = 32 * 1024 * 1024
    assert peak - baseline < byte_bound + fixed_overhead, (peak - baseline) / 2**20


def test_close_against_a_server_that_never_answers_returns_by_its_deadline_with_the_report():
    with RawServer("hung") as server:
        ctx = context(server.url)
        processor = BatchEventProcessor(batch_size=50)
        for _ in range(200):
            processor.process(conversion(ctx))
        assert server.got_request.wait(5)
        start = time.monotonic()
        report = processor.close(timeout=2.0)
        elapsed = time.monotonic() - start
    assert elapsed < 2.5
    assert report.timed_out
    assert report.delivered == 0
    assert report.pending + report.dropped.get("shutdown", 0) == 200
    # The windows of 50 stuck in flight, one per worker that got to take one (up to 4).
    assert report.pending in (50, 100, 150, 200)


def test_one_malformed_event_is_dead_lettered_and_all_others_are_delivered():
    with Collector() as collector:
        ctx = context(collector.events_url)
        events = [conversion(ctx) for _ in range(1_000)]
        bad = events[637]._replace(revenue="12.50")  # the Event API wants an integer
        events[637] = bad
        dead = []
        processor = BatchEventProcessor(dead_letter=lambda event, result: dead.append((event, result)))
        for event in events:
            processor.process(event)
        assert processor.close(timeout=20).completed
        assert collector.event_count() == 999
    stats = processor.stats()
    assert stats.delivered == 999
    assert stats.dropped == {"rejected": 1}
    assert [event for event, _ in dead] == [bad]
    assert dead[0][1].status == 400


def test_the_bytes_at_the_server_are_exactly_the_bytes_the_payload_factory_produced():
    with Collector(keep_raw_bodies=True) as collector:
        ctx_a = context(collector.events_url)
        ctx_b = context(collector.events_url, revision="43")
        events = [conversion(ctx_a if i % 3 else ctx_b) if i % 2 else impression(ctx_a) for i in range(3_000)]
        by_uuid = {e.uuid: e for e in events}
        sent = []
        processor = BatchEventProcessor(batch_size=250, on_log_event=lambda le: sent.append(le.body))
        for event in events:
            processor.process(event)
        assert processor.close(timeout=20).completed
        received = collector.raw_bodies()
    assert sorted(received) == sorted(sent)
    for body in received:
        rebuilt = build_log_event([by_uuid[u] for u in uuids_of(body)])
        assert rebuilt.body == body
