"""POST /v1/events: accepted payloads are stored once, whatever their encoding."""

from __future__ import annotations

import http.client
import threading

import pytest
from tests.collector.helpers import body_of, conversion, get_json, impression, post, post_gzip

from flagstream import _json
from flagstream.collector import Collector


def test_flagstream_payload_is_accepted_and_stored(collector: Collector) -> None:
    events = [impression("alice"), conversion("alice", revenue=1200)]
    status, _, body = post(collector, body_of(events))
    assert (status, body) == (204, b"")
    assert collector.wait_for_events(2, timeout=5)
    stored = get_json(collector, "/api/events")["events"]
    assert [e["key"] for e in stored] == ["campaign_activated", "purchase"]
    assert stored[0]["decisions"][0]["variation_id"] == "9001"
    assert stored[1]["revenue"] == 1200


def test_gzip_body_is_accepted(collector: Collector) -> None:
    status, _, _ = post_gzip(collector, body_of([impression("bob")]))
    assert status == 204
    assert collector.event_count() == 1


def test_duplicate_events_are_stored_once(collector: Collector) -> None:
    body = body_of([impression("carol"), conversion("carol")])
    assert post(collector, body)[0] == 204
    assert post(collector, body)[0] == 204
    assert collector.event_count() == 2
    assert collector.duplicate_count() == 2
    assert len(get_json(collector, "/api/events")["events"]) == 2


def test_duplicate_inside_one_body_is_stored_once(collector: Collector) -> None:
    event = conversion("dave")
    assert post(collector, body_of([event, event]))[0] == 204
    assert collector.event_count() == 1


def test_same_uuid_with_other_timestamp_is_a_distinct_event(collector: Collector) -> None:
    payload = _json.loads(body_of([conversion("erin")]))
    post(collector, _json.dumps(payload))
    payload["visitors"][0]["snapshots"][0]["events"][0]["timestamp"] += 1
    post(collector, _json.dumps(payload))
    assert collector.event_count() == 2


def test_keep_alive_connection_serves_many_requests() -> None:
    with Collector(keep_raw_bodies=True) as collector:
        conn = http.client.HTTPConnection(collector.host, collector.port, timeout=10)
        bodies = [body_of([impression(f"user{i}")]) for i in range(20)]
        for body in bodies:
            conn.request("POST", "/v1/events", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 204
        conn.close()
        assert collector.raw_bodies() == bodies
        assert [(s, n) for s, _, n in collector.request_log()] == [(204, 1)] * 20


def test_wait_for_events_returns_false_at_its_deadline(collector: Collector) -> None:
    assert collector.wait_for_events(1, timeout=0.05) is False


def test_wait_for_events_wakes_when_events_arrive_from_another_thread(collector: Collector) -> None:
    sender = threading.Thread(target=post, args=(collector, body_of([impression("frank")])))
    sender.start()
    assert collector.wait_for_events(1, timeout=5)
    sender.join(5)


def test_stop_returns_promptly_with_an_idle_keep_alive_connection_open() -> None:
    collector = Collector().start()
    conn = http.client.HTTPConnection(collector.host, collector.port, timeout=10)
    conn.request("GET", "/healthz")
    conn.getresponse().read()
    assert collector.stop(timeout=3) is True
    conn.close()


def test_file_database_keeps_events_across_restarts(tmp_path) -> None:
    db = str(tmp_path / "events.db")
    body = body_of([impression("gina"), conversion("gina")])
    with Collector(db=db) as collector:
        post(collector, body)
    with Collector(db=db) as collector:
        assert collector.event_count() == 2
        assert post(collector, body)[0] == 204
        assert collector.event_count() == 2
        assert len(get_json(collector, "/api/events")["events"]) == 2


def test_body_mixing_repeated_and_new_events_stores_only_the_new(collector: Collector) -> None:
    seen = impression("hana", "101")
    post(collector, body_of([seen]))
    new = [impression("ivan", "102"), conversion("hana")]
    assert post(collector, body_of([seen, *new, new[0]]))[0] == 204
    assert collector.event_count() == 3
    assert collector.duplicate_count() == 2
    stored = get_json(collector, "/api/events")["events"]
    assert sorted(e["visitor_id"] for e in stored) == ["hana", "hana", "ivan"]
    (experiment,) = get_json(collector, "/api/results")["experiments"]
    assert [v["visitors"] for v in experiment["variations"]] == [1, 1]


def test_database_of_another_schema_is_refused(tmp_path) -> None:
    import sqlite3

    from flagstream.errors import ConfigurationError

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE events (id INTEGER)")
    conn.close()
    with pytest.raises(ConfigurationError):
        Collector(db=str(path))


def test_collector_binds_ipv6_loopback() -> None:
    try:
        collector = Collector(host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    try:
        assert collector.url.startswith("http://[::1]:")
        assert post(collector, body_of([impression("v6")]))[0] == 204
    finally:
        collector.stop()


def test_a_stopped_collector_cannot_start_again() -> None:
    from flagstream.errors import FlagstreamError

    collector = Collector().start()
    assert collector.stop()
    with pytest.raises(FlagstreamError):
        collector.start()
