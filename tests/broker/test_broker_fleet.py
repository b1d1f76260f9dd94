"""Forwarder fleets under failure: SIGKILL of one, of all, graceful SIGTERM (real processes, real Redis)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from tests.broker.helpers import Producer, pending_of, produce, stored_visitors, wait_until
from tests.broker.servers import ForwarderProcess, RedisServer

from flagstream.collector import Collector, FaultConfig

Start = Callable[..., ForwarderProcess]


def test_a_killed_forwarders_backlog_is_picked_up_by_its_peers_within_min_idle(
    redis_server: RedisServer, collector: Collector, forwarders: Start
) -> None:
    collector.set_faults(FaultConfig(latency=0.05))
    users = [f"u{i}" for i in range(3000)]
    produce(redis_server.url, users, batch_size=10)  # 300 entries
    options = ("--min-idle", "2", "--concurrency", "2", "--window", "5", "--post-timeout", "1")
    fleet = [forwarders(redis_server.url, f"fw{i}", collector.events_url, *options) for i in range(4)]
    victim = fleet[0]
    assert wait_until(lambda: victim.metrics().get("acked", 0) >= 5, 20)
    client = redis_server.client()
    victim.kill()
    killed_at = time.monotonic()
    held = pending_of(client, "fw0")  # its in-flight entries: at most concurrency x window
    assert held <= 2 * 5
    assert wait_until(lambda: pending_of(client, "fw0") == 0, 2 + 8), "peers did not reclaim the backlog"
    reclaimed_after = time.monotonic() - killed_at
    assert collector.wait_for_events(len(users), 60)
    assert sorted(stored_visitors(collector)) == sorted(users)
    # Duplicates only from the killed forwarder's in-flight entries (10 events per entry).
    assert collector.state.store.duplicate_count <= held * 10
    reclaims = sum(f.metrics()["reclaimed"] for f in fleet[1:])
    assert reclaims >= held
    assert reclaimed_after < 2 + 8
    for peer in fleet[1:]:
        assert peer.stop()["finished_in_time"]


def test_all_forwarders_killed_while_producing_then_two_drain_the_backlog(
    redis_server: RedisServer, collector: Collector, forwarders: Start
) -> None:
    options = ("--min-idle", "1.5", "--window", "10", "--post-timeout", "1")
    first = [forwarders(redis_server.url, f"a{i}", collector.events_url, *options) for i in range(2)]
    producer = Producer(redis_server.url, "p").start()
    assert wait_until(lambda: collector.event_count() >= 200, 20)
    for forwarder in first:
        forwarder.kill()
    delivered_before = collector.event_count()
    assert wait_until(lambda: len(producer.users) >= delivered_before + 500, 20)  # a backlog builds up
    second = [forwarders(redis_server.url, f"b{i}", collector.events_url, *options) for i in range(2)]
    producer.stop()
    assert collector.wait_for_events(len(producer.users), 60), (collector.event_count(), len(producer.users))
    assert sorted(set(stored_visitors(collector))) == sorted(producer.users)
    client = redis_server.client()
    assert wait_until(lambda: pending_of(client) == 0, 10)
    for forwarder in second:
        assert forwarder.stop()["finished_in_time"]


def test_sigterm_under_load_exits_within_its_deadline_and_loses_nothing(
    redis_server: RedisServer, collector: Collector, forwarders: Start
) -> None:
    collector.set_faults(FaultConfig(latency=0.2))
    users = [f"t{i}" for i in range(2000)]
    produce(redis_server.url, users, batch_size=10)
    options = ("--min-idle", "2", "--concurrency", "4", "--window", "10", "--shutdown-timeout", "2",
               "--post-timeout", "1")  # fmt: skip
    leaving = forwarders(redis_server.url, "leaving", collector.events_url, *options)
    staying = forwarders(redis_server.url, "staying", collector.events_url, *options)
    assert wait_until(lambda: leaving.metrics().get("acked", 0) >= 10, 20)
    started = time.monotonic()
    leaving.signal(signal.SIGTERM)
    summary = leaving.finish(30)
    took = time.monotonic() - started
    assert leaving.process.returncode == 0, leaving.stderr
    assert summary["finished_in_time"]
    assert summary["shutdown_seconds"] <= 2.0 + 0.5
    assert took < 2.0 + 3.0  # the deadline plus interpreter exit
    assert collector.wait_for_events(len(users), 60)
    assert sorted(stored_visitors(collector)) == sorted(users)
    assert staying.stop()["finished_in_time"]
