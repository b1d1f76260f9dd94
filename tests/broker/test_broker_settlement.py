"""Leases during long retries, poison entries, dead letters and their replay (real forwarder processes)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from tests.broker.helpers import (
    DLQ,
    EVENTS,
    pending_of,
    poisoned_body,
    produce,
    stored_visitors,
    wait_until,
    write_body,
)
from tests.broker.servers import ForwarderProcess, RedisServer
from tests.collector.helpers import body_of, impression

from flagstream import _json
from flagstream.cli import main
from flagstream.collector import Collector, FaultConfig

Start = Callable[..., ForwarderProcess]


def test_a_retry_longer_than_min_idle_keeps_the_lease_so_no_peer_posts_the_entry(
    redis_server: RedisServer, collector: Collector, forwarders: Start
) -> None:
    collector.set_faults(FaultConfig(fail_rate=1.0, status=503))
    min_idle = 2.0
    options = ("--min-idle", str(min_idle), "--post-timeout", "0.5", "--retry-deadline", "60")
    holder = forwarders(redis_server.url, "holder", collector.events_url, *options)
    write_body(redis_server.url, body_of([impression(f"l{i}") for i in range(5)]))  # exactly one entry
    assert wait_until(lambda: holder.metrics().get("posted", 0) >= 1, 20)
    retrying_since = time.monotonic()
    peer = forwarders(redis_server.url, "peer", collector.events_url, *options)
    client = redis_server.client()
    # 503s for 2.5 x min_idle: without lease keeping the idle entry would go to the peer.
    while time.monotonic() - retrying_since < 2.5 * min_idle:
        assert (pending_of(client, "holder"), pending_of(client, "peer")) == (1, 0)
        assert peer.metrics().get("posted", 0) == 0
        time.sleep(0.2)  # sampling interval of the check, not synchronisation
    assert holder.metrics()["retried"] >= 3
    collector.set_faults(FaultConfig())
    assert collector.wait_for_events(5, 30)
    assert wait_until(lambda: pending_of(client) == 0, 10)
    peer_metrics = peer.metrics()
    assert peer_metrics.get("posted", 0) == 0
    assert peer_metrics["reclaimed"] == 0
    assert collector.state.store.duplicate_count == 0
    holder.stop()
    peer.stop()


def test_a_400_for_one_event_dead_letters_only_that_event(
    redis_server: RedisServer, collector: Collector, forwarders: Start
) -> None:
    body, bad_user = poisoned_body(good=9)
    write_body(redis_server.url, body)
    fw = forwarders(redis_server.url, "fw", collector.events_url, "--min-idle", "5", "--post-timeout", "1")
    assert collector.wait_for_events(9, 20)
    client = redis_server.client()
    assert wait_until(lambda: client.xlen(DLQ) == 1, 10)
    [(_, fields)] = client.xrange(DLQ)
    assert fields[b"reason"] == b"rejected"
    assert fields[b"n"] == b"1"
    assert [v["visitor_id"] for v in _json.loads(fields[b"b"])["visitors"]] == [bad_user]
    assert bad_user not in stored_visitors(collector)
    assert sorted(stored_visitors(collector)) == sorted(f"good-{i}" for i in range(9))
    assert wait_until(lambda: pending_of(client) == 0, 10)
    assert fw.stop()["dead_lettered"] == 1


def test_an_entry_failing_more_than_max_deliveries_is_dead_lettered_and_replay_delivers_it_once(
    redis_server: RedisServer, collector: Collector, forwarders: Start, capsys: pytest.CaptureFixture[str]
) -> None:
    collector.set_faults(FaultConfig(fail_rate=1.0, status=500))
    users = [f"m{i}" for i in range(4)]
    write_body(redis_server.url, body_of([impression(u) for u in users]))  # exactly one entry
    options = (
        "--min-idle",
        "0.6",
        "--post-timeout",
        "0.2",
        "--retry-deadline",
        "0.3",
        "--max-deliveries",
        "2",
    )
    fw = forwarders(redis_server.url, "fw", collector.events_url, *options)
    client = redis_server.client()
    assert wait_until(lambda: client.xlen(DLQ) == 1, 30)
    [(_, fields)] = client.xrange(DLQ)
    assert fields[b"reason"] == b"max_deliveries"
    assert wait_until(lambda: pending_of(client) == 0, 10)
    collector.set_faults(FaultConfig())

    assert main(["dlq", "list", "--redis", redis_server.url, "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["reason"] == "max_deliveries"
    assert listed["events"] == 4
    assert main(["dlq", "replay", "--redis", redis_server.url]) == 0
    assert "replayed 1 dead letter(s)" in capsys.readouterr().out
    assert collector.wait_for_events(4, 20)
    assert main(["dlq", "replay", "--redis", redis_server.url]) == 0  # twice: nothing left to move
    assert "replayed 0 dead letter(s)" in capsys.readouterr().out
    assert wait_until(lambda: pending_of(client) == 0 and client.xlen(DLQ) == 0, 10)
    assert sorted(stored_visitors(collector)) == sorted(users)
    assert collector.state.store.duplicate_count == 0
    fw.stop()


def test_garbage_in_the_stream_is_dead_lettered_with_a_clear_reason_and_nothing_else_is_lost(
    redis_server: RedisServer, collector: Collector, forwarders: Start
) -> None:
    client = redis_server.client()
    client.xgroup_create(EVENTS, "forwarders", id="0", mkstream=True)
    client.xadd(EVENTS, {"hello": "world"})
    client.xadd(EVENTS, {"b": "{}", "u": "ftp://nowhere", "n": "x"})
    produce(redis_server.url, ["after-garbage"], batch_size=1)
    fw = forwarders(redis_server.url, "fw", collector.events_url, "--min-idle", "5")
    assert collector.wait_for_events(1, 20)
    assert wait_until(lambda: client.xlen(DLQ) == 2, 10)
    reasons = [fields[b"reason"].decode() for _, fields in client.xrange(DLQ)]
    assert reasons[0] == "malformed: no body (field b)"
    assert reasons[1].startswith("malformed: url (field u) is not http(s)")
    assert wait_until(lambda: pending_of(client) == 0, 10)
    fw.stop()
