"""The length cap: what it evicts is counted exactly, and pending entries it deleted are acknowledged."""

from __future__ import annotations

from collections.abc import Callable

from tests.broker.helpers import EVENTS, LAYOUT, pending_of, produce, stored_visitors, wait_until
from tests.broker.servers import ForwarderProcess, RedisServer

from flagstream.collector import Collector, FaultConfig

Start = Callable[..., ForwarderProcess]


def _trim_counts(client: object) -> dict[bytes, int]:
    return {k: int(v) for k, v in client.hgetall(LAYOUT.trim(0)).items()}  # type: ignore[attr-defined]


def test_trimming_with_forwarders_stopped_counts_exactly_what_the_server_evicted(
    redis_server: RedisServer,
) -> None:
    dispatcher = produce(redis_server.url, [f"t{i}" for i in range(50)], batch_size=1, max_len=20)
    client = redis_server.client()
    info = client.xinfo_stream(EVENTS)
    evicted = info["entries-added"] - info["length"]
    assert info["length"] == 20
    assert evicted == 30
    counts = _trim_counts(client)
    assert counts[b"lost_undelivered"] == evicted
    assert counts.get(b"lost_pending", 0) == 0
    assert counts.get(b"acked", 0) == 0
    assert dispatcher.counters.lost_undelivered == evicted


def test_pending_entries_deleted_by_trimming_are_counted_and_acknowledged_on_reclaim(
    redis_server: RedisServer, collector: Collector, forwarders: Start
) -> None:
    collector.set_faults(FaultConfig(latency=20.0))  # the first forwarder holds its window, posting
    produce(redis_server.url, [f"old{i}" for i in range(10)], batch_size=1, max_len=10)
    client = redis_server.client()
    holder = forwarders(redis_server.url, "holder", collector.events_url,
                        "--window", "5", "--concurrency", "1", "--min-idle", "30", "--post-timeout", "10")  # fmt: skip
    assert wait_until(lambda: pending_of(client, "holder") == 5, 20)
    holder.kill()  # five entries stay pending, five were never delivered
    produce(redis_server.url, [f"new{i}" for i in range(10)], batch_size=1, max_len=10)
    info = client.xinfo_stream(EVENTS)
    evicted = info["entries-added"] - info["length"]
    counts = _trim_counts(client)
    assert evicted == 10
    assert (counts[b"lost_pending"], counts[b"lost_undelivered"]) == (5, 5)
    assert pending_of(client) == 5  # Redis keeps trimmed ids in the pending list (KEEPREF)

    collector.set_faults(FaultConfig())
    after = forwarders(redis_server.url, "after", collector.events_url, "--min-idle", "1")
    assert collector.wait_for_events(10, 20)
    assert wait_until(lambda: pending_of(client) == 0, 15)
    assert wait_until(lambda: after.metrics()["lost_to_trim"] == 5, 10)
    assert sorted(stored_visitors(collector)) == sorted(f"new{i}" for i in range(10))
    after.stop()
