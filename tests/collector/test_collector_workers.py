"""decode_workers: large bodies decoded in worker processes get exactly the answers they get without."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.collector.helpers import body_of, conversion, get_json, impression, post, post_gzip
from tests.collector.test_collector_validation import ALL_PATHS, _mutated, json_values

from flagstream import _json
from flagstream.collector import Collector
from flagstream.collector.schema import DecodedBatch, decode_batch
from flagstream.collector.validate import PayloadError
from flagstream.collector.workers import MIN_OFFLOAD_BYTES, DecodeWorkers, keys_from, reply_for
from flagstream.errors import ConfigurationError


def _large_body(user: str, n: int = 400) -> bytes:
    body = body_of(
        [impression(f"{user}-{i}") if i % 2 else conversion(f"{user}-{i}", revenue=i) for i in range(n)]
    )
    assert len(body) >= MIN_OFFLOAD_BYTES
    return body


def _outcome(decode: Callable[[bytes], object], body: bytes) -> object:
    try:
        return decode(body)
    except PayloadError as err:
        return {"error": str(err), "path": err.path}


@pytest.fixture(scope="module")
def workers() -> Iterator[DecodeWorkers]:
    w = DecodeWorkers(2)
    assert w.start() == 2
    yield w
    assert w.close()


@pytest.fixture
def collector_with_workers() -> Iterator[Collector]:
    with Collector(decode_workers=1) as c:
        yield c


def test_worker_gives_the_same_keys_as_the_request_thread(workers: DecodeWorkers) -> None:
    body = _large_body("same")
    assert workers.decode(body) == decode_batch(body)


def test_worker_rejects_with_the_same_first_bad_field(workers: DecodeWorkers) -> None:
    payload = _json.loads(_large_body("bad"))
    payload["visitors"][150]["snapshots"][0]["events"][0]["timestamp"] = "soon"
    body = _json.dumps(payload)
    error = _outcome(workers.decode, body)
    assert error == _outcome(decode_batch, body)
    assert error == {
        "error": "visitors[150].snapshots[0].events[0].timestamp: expected integer, got string",
        "path": "visitors[150].snapshots[0].events[0].timestamp",
    }


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"timestamp":2000', b'"timestamp":1' + b"0" * 30),  # beyond 64 bits: msgpack cannot carry it
        (b'"timestamp":2000', b'"timestamp":true'),
        (b'"timestamp":2000', b'"timestamp":1.5'),
        (b'"visitor_id":"corner-1"', b'"visitor_id":"\\ud800 lone"'),
        (b'"visitor_id":"corner-1"', b'"visitor_id":"\\ud83d\\ude00 \xc3\xa9"'),
        (b'"visitor_id":"corner-1"', b'"visitor_id":"\xff"'),
        (b'"account_id":"111"', b'"account_id":"111","account_id":5'),
    ],
)
def test_worker_and_request_thread_agree_on_corner_values(
    workers: DecodeWorkers, old: bytes, new: bytes
) -> None:
    body = _large_body("corner").replace(old, new, 1)
    assert new in body
    assert _outcome(workers.decode, body) == _outcome(decode_batch, body)


def test_truncated_large_body_gets_the_same_error(workers: DecodeWorkers) -> None:
    truncated = _large_body("cut")[:-10]
    error = _outcome(workers.decode, truncated)
    assert error == _outcome(decode_batch, truncated)
    assert isinstance(error, dict)


def test_large_bodies_are_stored_once_with_workers(collector_with_workers: Collector) -> None:
    collector = collector_with_workers
    first, second = _large_body("alpha"), _large_body("beta")
    assert post(collector, first)[0] == 204
    assert post_gzip(collector, second)[0] == 204
    assert post(collector, first)[0] == 204
    assert collector.wait_for_events(800, timeout=10)
    assert (collector.event_count(), collector.duplicate_count()) == (800, 400)
    assert [(s, n) for s, _, n in collector.request_log()] == [(204, 400)] * 3
    assert get_json(collector, "/api/events?limit=1000")["count"] == 800


def test_large_body_mixing_repeated_and_new_events_stores_only_the_new(
    collector_with_workers: Collector,
) -> None:
    collector = collector_with_workers
    payload = _json.loads(_large_body("gamma"))
    assert post(collector, _json.dumps(payload))[0] == 204
    payload["visitors"][0]["visitor_id"] = "someone-else"
    payload["visitors"][0]["snapshots"][0]["events"][0]["uuid"] = "fresh-uuid"
    assert post(collector, _json.dumps(payload))[0] == 204
    assert (collector.event_count(), collector.duplicate_count()) == (401, 399)
    stored = get_json(collector, "/api/events?visitor=someone-else")["events"]
    assert [e["uuid"] for e in stored] == ["fresh-uuid"]


def test_invalid_large_body_gets_400_naming_the_field(collector_with_workers: Collector) -> None:
    payload = _json.loads(_large_body("delta"))
    del payload["visitors"][7]["snapshots"][0]["events"][0]["uuid"]
    status, _, answer = post(collector_with_workers, _json.dumps(payload))
    assert status == 400
    assert _json.loads(answer)["path"] == "visitors[7].snapshots[0].events[0].uuid"
    assert collector_with_workers.event_count() == 0


def test_a_killed_worker_is_replaced_by_decoding_in_the_request_thread() -> None:
    with Collector(decode_workers=1) as collector:
        (pid,) = collector.decode_worker_pids()
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(timeout=5)
        assert post(collector, _large_body("epsilon"))[0] == 204
        assert collector.event_count() == 400
        assert collector.decode_worker_pids() == []
        assert post(collector, _large_body("zeta"))[0] == 204
        assert collector.event_count() == 800


def test_stop_ends_the_worker_processes() -> None:
    collector = Collector(decode_workers=2).start()
    pids = collector.decode_worker_pids()
    assert len(pids) == 2
    assert post(collector, _large_body("eta"))[0] == 204
    assert collector.stop(timeout=5) is True
    assert not any(psutil.pid_exists(pid) for pid in pids)


def test_decode_workers_must_be_a_sensible_count() -> None:
    for bad in (-1, 65, True):
        with pytest.raises(ConfigurationError):
            Collector(decode_workers=bad)


def test_closing_while_bodies_are_decoded_loses_no_answer() -> None:
    workers = DecodeWorkers(1)
    assert workers.start() == 1
    pids = workers.pids()
    bodies = [_large_body(f"busy{i}", 1000) for i in range(6)]
    expected = [decode_batch(b) for b in bodies]
    got: list[object] = []
    started = threading.Event()

    def decode_all() -> None:
        for body in bodies:
            started.set()
            got.append(workers.decode(body))

    thread = threading.Thread(target=decode_all)
    thread.start()
    assert started.wait(5)
    assert workers.close(timeout=5)
    thread.join(10)
    assert not thread.is_alive()
    assert got == expected
    assert not any(psutil.pid_exists(pid) for pid in pids)


def test_workers_that_cannot_start_leave_decoding_in_the_request_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    with Collector(decode_workers=2) as collector:
        assert collector.decode_worker_pids() == []
        assert post(collector, _large_body("theta"))[0] == 204
        assert collector.event_count() == 400


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(ALL_PATHS), value=json_values, delete=st.booleans())
def test_a_worker_calls_valid_exactly_what_the_request_thread_does(
    path: str, value: object, delete: bool
) -> None:
    body = _json.dumps(_mutated(path, value, delete))
    keys = keys_from(reply_for(body))
    outcome = _outcome(decode_batch, body)
    if isinstance(outcome, dict):
        assert keys is None  # the request thread decodes it again and names the field
    else:
        assert keys is not None
        assert DecodedBatch.of(keys) == outcome


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | json_values.map(_json.dumps))
def test_a_worker_never_calls_valid_a_body_the_request_thread_rejects(body: bytes) -> None:
    if keys_from(reply_for(body)) is not None:
        assert not isinstance(_outcome(decode_batch, body), dict)
