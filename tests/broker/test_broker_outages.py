"""Redis stopped, killed, or absent: callers never wait, producers buffer within bounds, then deliver.

The SIGSTOP scenario runs for 5 s here; ``make soak`` runs it for the full 30 s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.broker.helpers import EVENTS, produce, stored_visitors, wait_until
from tests.broker.servers import ForwarderProcess, RedisServer
from tests.collector.helpers import impression

from flagstream import Optimizely, _json
from flagstream.broker import RedisStreamDispatcher
from flagstream.collector import Collector
from flagstream.delivery import BatchEventProcessor
from flagstream.demo import demo_datafile

Start = Callable[..., ForwarderProcess]


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[int(len(ordered) * 0.99)]


def _calls(processor: BatchEventProcessor, prefix: str, seconds: float, users: list[str]) -> list[float]:
    """process() calls for ``seconds`` (one per ms), timing each; returns the per-call times."""
    times: list[float] = []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        event = impression(f"{prefix}-{i}")
        started = time.perf_counter()
        processor.process(event)
        times.append(time.perf_counter() - started)
        users.append(f"{prefix}-{i}")
        i += 1
        time.sleep(0.001)  # pacing of the simulated traffic, not synchronisation
    return times


def _stopped_redis_scenario(
    redis_server: RedisServer, collector: Collector, forwarders: Start, stop_seconds: float
) -> None:
    fw = forwarders(redis_server.url, "fw", collector.events_url, "--min-idle", "10")
    dispatcher = RedisStreamDispatcher(redis_server.url, socket_timeout=0.5, connect_timeout=0.5)
    processor = BatchEventProcessor(dispatcher, batch_size=20, flush_interval=0.05, max_queue_events=200_000)
    users: list[str] = []
    before = _calls(processor, "before", 1.0, users)
    redis_server.pause()
    try:
        during = _calls(processor, "during", stop_seconds, users)
        stats = processor.stats()
        assert stats.queued_events <= 200_000
        assert not stats.dropped
        assert stats.queued_events > 0  # buffered while Redis is stopped
    finally:
        redis_server.resume()
    report = processor.close(timeout=90)
    assert report.pending == 0, report
    assert not report.dropped, report
    assert collector.wait_for_events(len(users), 60), (collector.event_count(), len(users))
    assert set(stored_visitors(collector)) == set(users)
    # The caller never waits on Redis: no call comes near the socket timeout, and the tail is unchanged.
    p99_before, p99_during = _p99(before), _p99(during)
    print(f"process() p99 before {p99_before * 1e6:.1f} us, while Redis is stopped {p99_during * 1e6:.1f} us")
    assert max(during) < 0.1
    assert p99_during < max(5 * p99_before, 200e-6)
    fw.stop()


def test_redis_sigstopped_callers_do_not_wait_and_events_are_delivered_after(
    redis_server: RedisServer, collector: Collector, forwarders: Start
) -> None:
    _stopped_redis_scenario(redis_server, collector, forwarders, stop_seconds=5.0)


@pytest.mark.soak
@pytest.mark.timeout(600)
@pytest.mark.skipif(not os.environ.get("FLAGSTREAM_SOAK"), reason="soak test: run with `make soak`")
def test_redis_sigstopped_for_30_seconds(
    redis_server: RedisServer, collector: Collector, forwarders: Start
) -> None:
    _stopped_redis_scenario(redis_server, collector, forwarders, stop_seconds=30.0)


def test_redis_sigkilled_and_restarted_with_appendfsync_always_loses_no_acknowledged_xadd(
    tmp_path: Path, collector: Collector, forwarders: Start
) -> None:
    server = RedisServer(tmp_path / "aof", appendfsync="always").start()
    try:
        acknowledged = [f"k{i}" for i in range(2000)]
        produce(server.url, acknowledged, batch_size=10)  # every XADD acknowledged (the processor counted it)
        dispatcher = RedisStreamDispatcher(server.url, socket_timeout=0.5, connect_timeout=0.5)
        processor = BatchEventProcessor(dispatcher, batch_size=20, flush_interval=0.05)
        server.kill()
        later: list[str] = []
        during = _calls(processor, "down", 2.0, later)  # the application keeps going while Redis is dead
        assert processor.stats().queued_events > 0
        assert not processor.stats().dropped
        server.start()  # same port and directory: the AOF is replayed
        client = server.client()
        stored = {v["visitor_id"] for _, f in client.xrange(EVENTS) for v in _json.loads(f[b"b"])["visitors"]}
        assert set(acknowledged) <= stored  # nothing acknowledged before the kill is missing
        report = processor.close(timeout=60)
        assert report.pending == 0
        assert not report.dropped
        assert max(during) < 0.1  # no caller waited on the dead server
        fw = forwarders(server.url, "fw", collector.events_url, "--min-idle", "5")
        assert collector.wait_for_events(len(acknowledged) + len(later), 30)
        assert sorted(stored_visitors(collector)) == sorted(acknowledged + later)
        fw.stop()
    finally:
        server.stop()


def test_redis_absent_when_the_application_starts_then_events_are_delivered_once_it_appears(
    tmp_path: Path, collector: Collector, forwarders: Start
) -> None:
    server = RedisServer(tmp_path / "late")  # port chosen, nothing listening yet
    client = Optimizely(
        demo_datafile(),
        event_processor_options={"broker": server.url, "batch_size": 10, "flush_interval": 0.05},
    )
    try:
        started = time.perf_counter()
        for i in range(200):
            client.track("purchase", f"late-{i}")
        assert time.perf_counter() - started < 1.0  # nothing waited on the missing server
        stats = client.event_processor.stats()
        assert wait_until(lambda: client.event_processor.stats().retried > 0, 10)
        assert stats.delivered == 0
        assert not stats.dropped
        server.start()
        fw = forwarders(server.url, "fw", collector.events_url, "--min-idle", "5")
        assert collector.wait_for_events(200, 60)
        assert sorted(stored_visitors(collector)) == sorted(f"late-{i}" for i in range(200))
        fw.stop()
    finally:
        client.close()
        server.stop()


def test_a_redis_restarted_without_its_data_gets_its_group_back_and_delivery_resumes(
    redis_server: RedisServer, collector: Collector, forwarders: Start
) -> None:
    fw = forwarders(redis_server.url, "fw", collector.events_url, "--min-idle", "5")
    dispatcher = RedisStreamDispatcher(redis_server.url, socket_timeout=0.5)
    processor = BatchEventProcessor(dispatcher, batch_size=5, flush_interval=0.05)
    for i in range(5):
        processor.process(impression(f"first-{i}"))
    assert collector.wait_for_events(5, 20)
    redis_server.kill()
    redis_server.start()  # no AOF: the stream and its consumer group are gone
    for i in range(5):
        processor.process(impression(f"second-{i}"))
    report = processor.close(timeout=30)
    assert report.pending == 0
    assert not report.dropped
    assert collector.wait_for_events(10, 30)  # NOGROUP on the forwarder: it recreated the group
    assert sorted(stored_visitors(collector)) == sorted(
        [f"first-{i}" for i in range(5)] + [f"second-{i}" for i in range(5)]
    )
    fw.stop()
