"""HttpDispatcher against real servers on 127.0.0.1, well-behaved and not."""

from __future__ import annotations

import gzip
import socket
import subprocess
import threading
import time

import pytest
from tests.delivery.factories import conversion
from tests.servers.raw import RawServer
from tests.servers.sink import Sink

from flagstream import __version__
from flagstream.delivery.http import HttpDispatcher
from flagstream.delivery.result import Verdict
from flagstream.delivery.retry import RetryPolicy
from flagstream.events.log_event import LogEvent
from flagstream.events.payload import build_log_event


def log_event_for(url: str) -> LogEvent:
    event = build_log_event([conversion(), conversion()])
    return LogEvent(url, event.params, body=event.body)


@pytest.fixture
def dispatcher():
    d = HttpDispatcher(timeout=2.0, retry=RetryPolicy(backoff_base=0.01, backoff_max=0.05, deadline=5.0))
    yield d
    d.close()


def test_the_exact_payload_bytes_are_posted_with_json_and_sdk_headers(dispatcher):
    with Sink() as sink:
        event = log_event_for(sink.url)
        result = dispatcher.send(event)
        assert result.ok
        assert result.status == 204
        _, _, body, headers = sink.log[0]
        assert body == event.body
        assert headers["Content-Type"] == "application/json"
        assert headers["User-Agent"] == f"flagstream/{__version__}"
        assert "Content-Encoding" not in headers
        assert sink.paths == ["/v1/events"]


def test_connections_are_kept_alive_across_requests(dispatcher):
    with RawServer("ok") as server:
        for _ in range(20):
            assert dispatcher.send(log_event_for(server.url)).ok
        assert server.connections == 1


def test_a_hung_server_costs_at_most_the_deadline(dispatcher):
    with RawServer("hung") as server:
        start = time.monotonic()
        result = dispatcher.send(log_event_for(server.url), deadline=time.monotonic() + 0.5)
        elapsed = time.monotonic() - start
        assert 0.4 < elapsed < 1.2
        assert result.status is None
        assert result.verdict is Verdict.RETRY
        assert "deadline" in (result.error or "") or "timed out" in (result.error or "").lower()


def test_a_server_that_trickles_bytes_is_cut_off_by_the_overall_timeout():
    with RawServer("slow", delay=0.1) as server, HttpDispatcher(timeout=0.6, read_timeout=5.0) as d:
        start = time.monotonic()
        result = d.send(log_event_for(server.url))
        assert time.monotonic() - start < 1.2
        assert not result.ok
        assert result.verdict is Verdict.RETRY


def test_a_server_that_reads_slowly_is_cut_off_by_the_overall_timeout():
    body = b'{"visitors":[' + b'"x",' * 500_000 + b'"x"]}'
    with RawServer("slow_read", delay=0.05) as server, HttpDispatcher(timeout=0.7, read_timeout=5.0) as d:
        start = time.monotonic()
        result = d.send(LogEvent(server.url, {}, body=body))
        assert time.monotonic() - start < 1.3
        assert server.got_request.is_set()
        assert not result.ok
        assert result.verdict is Verdict.RETRY


@pytest.mark.parametrize("mode", ["truncated", "reset"])
def test_truncated_and_reset_responses_are_retryable_failures(dispatcher, mode):
    with RawServer(mode) as server:
        result = dispatcher.send(log_event_for(server.url))
        assert not result.ok
        assert result.status is None
        assert result.verdict is Verdict.RETRY
        assert result.error


def test_dns_resolution_is_bounded_by_the_deadline(monkeypatch):
    release = threading.Event()
    real = socket.getaddrinfo

    def slow_getaddrinfo(host, *args, **kwargs):
        if host == "events.flagstream.invalid":
            release.wait(10)
            raise socket.gaierror("name resolution blocked by the test")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    with HttpDispatcher(timeout=0.5) as d:
        start = time.monotonic()
        result = d.send(log_event_for("http://events.flagstream.invalid/v1/events"))
        elapsed = time.monotonic() - start
        release.set()
    assert elapsed < 1.0
    assert not result.ok
    assert "deadline" in (result.error or "")


def test_retry_after_is_parsed_from_a_429(dispatcher):
    with Sink(lambda body, n: (429, {"Retry-After": "1"})) as sink:
        result = dispatcher.send(log_event_for(sink.url))
        assert (result.status, result.retry_after, result.verdict) == (429, 1.0, Verdict.RETRY)


def test_dispatch_event_retries_5xx_then_delivers_and_never_raises(dispatcher):
    with Sink(lambda body, n: (500 if n < 2 else 204, {})) as sink:
        assert dispatcher.dispatch_event(log_event_for(sink.url)) is None
        assert [status for _, status, _, _ in sink.log] == [500, 500, 204]


def test_dispatch_event_does_not_retry_a_400(dispatcher):
    with Sink(lambda body, n: (400, {})) as sink:
        dispatcher.dispatch_event(log_event_for(sink.url))
        assert len(sink.log) == 1


def test_dispatch_event_to_a_closed_port_logs_and_returns(dispatcher, caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dispatcher.dispatch_event(log_event_for(f"http://127.0.0.1:{port}/v1/events"))
    assert any("failed after" in r.getMessage() for r in caplog.records)


def test_gzip_is_opt_in_and_compresses_the_same_bytes():
    with Sink() as sink, HttpDispatcher(gzip=True) as d:
        event = log_event_for(sink.url)
        assert d.send(event).ok
        _, _, body, headers = sink.log[0]
        assert headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(body) == event.body


def test_requests_go_through_the_proxy_when_proxy_url_is_set():
    with Sink() as proxy, HttpDispatcher(proxy_url=proxy.url.rsplit("/v1", 1)[0]) as d:
        event = log_event_for("http://events.flagstream.invalid/v1/events")
        assert d.send(event).ok
        assert proxy.paths == ["http://events.flagstream.invalid/v1/events"]
        assert proxy.log[0][2] == event.body


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def test_tls_certificates_are_verified(self_signed):
    cert, key = self_signed
    with Sink(tls=(cert, key)) as sink:
        with HttpDispatcher(timeout=2.0) as d:
            refused = d.send(log_event_for(sink.url))
        assert not refused.ok
        assert "CERTIFICATE_VERIFY_FAILED" in (refused.error or "")
        with HttpDispatcher(timeout=2.0, ca_certs=cert) as d:
            assert d.send(log_event_for(sink.url)).ok
