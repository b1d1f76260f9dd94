"""Fault injection: failures with a status and Retry-After, latency, connection resets."""

from __future__ import annotations

import http.client
import threading
import time

import pytest
from tests.collector.helpers import body_of, conversion, get, impression, post

from flagstream.collector import Collector, FaultConfig
from flagstream.errors import ConfigurationError


def test_fail_rate_one_answers_every_request_with_the_status_and_retry_after() -> None:
    with Collector(faults=FaultConfig(fail_rate=1.0, status=503, retry_after=2)) as collector:
        status, headers, _ = post(collector, body_of([impression("a"), conversion("a")]))
        assert status == 503
        assert headers["Retry-After"] == "2"
        assert collector.event_count() == 0
        assert [(s, n) for s, _, n in collector.request_log()] == [(503, 2)]


def test_fractional_retry_after_is_rounded_up_to_whole_seconds() -> None:
    with Collector(faults=FaultConfig(fail_rate=1.0, status=429, retry_after=0.2)) as collector:
        status, headers, _ = post(collector, body_of([impression("a")]))
    assert (status, headers["Retry-After"]) == (429, "1")


def test_failure_without_retry_after_sends_no_header() -> None:
    with Collector(faults=FaultConfig(fail_rate=1.0, status=500)) as collector:
        status, headers, _ = post(collector, body_of([impression("a")]))
    assert status == 500
    assert "Retry-After" not in headers


def test_seeded_fail_rate_fails_about_that_share_and_repeats_exactly() -> None:
    outcomes = []
    for _ in range(2):
        with Collector(faults=FaultConfig(fail_rate=0.3, status=500, seed=7)) as collector:
            outcomes.append([post(collector, body_of([impression(f"u{i}")]))[0] for i in range(100)])
            assert collector.event_count() == outcomes[-1].count(204)
    assert outcomes[0] == outcomes[1]
    assert 15 <= outcomes[0].count(500) <= 45


def test_latency_delays_every_answer() -> None:
    with Collector(faults=FaultConfig(latency=0.3)) as collector:
        start = time.monotonic()
        assert post(collector, body_of([impression("slow")]))[0] == 204
        assert time.monotonic() - start >= 0.3


def test_reset_closes_the_connection_without_an_answer() -> None:
    with Collector(faults=FaultConfig(reset_rate=1.0)) as collector:
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            post(collector, body_of([impression("r")]))
        assert collector.event_count() == 0
        assert [(s, n) for s, _, n in collector.request_log()] == [(0, 1)]


def test_set_faults_changes_behaviour_while_running(collector: Collector) -> None:
    collector.set_faults(FaultConfig(fail_rate=1.0, status=502))
    assert post(collector, body_of([impression("x")]))[0] == 502
    collector.set_faults(FaultConfig())
    assert post(collector, body_of([impression("y")]))[0] == 204
    assert collector.faults == FaultConfig()


def test_faults_do_not_touch_the_read_apis() -> None:
    with Collector(faults=FaultConfig(fail_rate=1.0, reset_rate=1.0)) as collector:
        assert get(collector, "/healthz")[0] == 200


def test_stop_interrupts_a_latency_wait() -> None:
    collector = Collector(faults=FaultConfig(latency=60)).start()
    arrived = threading.Event()
    errors: list[BaseException] = []

    def send() -> None:
        conn = http.client.HTTPConnection(collector.host, collector.port, timeout=30)
        try:
            conn.request(
                "POST", "/v1/events", body_of([impression("z")]), {"Content-Type": "application/json"}
            )
            arrived.set()
            conn.getresponse().read()
        except (OSError, http.client.HTTPException) as exc:
            errors.append(exc)
        finally:
            conn.close()

    sender = threading.Thread(target=send)
    sender.start()
    assert arrived.wait(5)
    start = time.monotonic()
    assert collector.stop(timeout=5)
    assert time.monotonic() - start < 5
    sender.join(5)
    assert not sender.is_alive()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fail_rate": 1.5},
        {"reset_rate": -0.1},
        {"status": 99},
        {"status": 101},
        {"latency": -1},
        {"retry_after": -2},
    ],
)
def test_fault_config_rejects_impossible_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        FaultConfig(**kwargs)  # type: ignore[arg-type]
