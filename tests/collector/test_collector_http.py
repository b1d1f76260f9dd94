"""Malformed HTTP, wrong content types and oversized bodies are answered cleanly, never crash."""

from __future__ import annotations

import gzip
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.collector.helpers import body_of, get, impression, post

from flagstream import _json
from flagstream.collector import MAX_BODY_BYTES, Collector
from flagstream.collector.handler import CollectorHandler


def _raw(collector: Collector, request: bytes, half_close: bool = False) -> bytes:
    """Send raw bytes, read until the server closes (or 5 s), return the answer."""
    with socket.create_connection((collector.host, collector.port), timeout=5) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _still_serves(collector: Collector) -> None:
    assert post(collector, body_of([impression("after")]))[0] == 204


def test_bad_json_is_a_400_naming_the_body(collector: Collector) -> None:
    status, _, body = post(collector, b'{"account_id": "1", "visitors": [')
    assert status == 400
    assert _json.loads(body)["error"].startswith("body: invalid JSON")
    _still_serves(collector)


def test_non_utf8_body_is_a_400(collector: Collector) -> None:
    status, _, body = post(collector, b'{"account_id": "\xff\xfe", "visitors": []}')
    assert status == 400
    assert "UTF-8" in _json.loads(body)["error"]


def test_wrong_content_type_is_a_415(collector: Collector) -> None:
    status, _, _ = post(collector, body_of([impression("x")]), {"Content-Type": "text/plain"})
    assert status == 415
    assert collector.event_count() == 0


def test_content_type_with_charset_is_accepted(collector: Collector) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    assert post(collector, body_of([impression("x")]), headers)[0] == 204


def test_body_above_the_event_api_limit_is_a_413(collector: Collector) -> None:
    status, _, body = post(collector, b" " * (MAX_BODY_BYTES + 1))
    assert status == 413
    assert b"larger than" in body
    _still_serves(collector)


def test_unknown_content_encoding_is_a_415(collector: Collector) -> None:
    assert post(collector, b"{}", {"Content-Encoding": "br"})[0] == 415


def test_corrupt_gzip_is_a_400(collector: Collector) -> None:
    good = gzip.compress(body_of([impression("x")]))
    status, _, body = post(collector, good[: len(good) // 2], {"Content-Encoding": "gzip"})
    assert status == 400
    assert b"gzip" in body


def test_truncated_body_is_a_400_and_the_connection_closes(collector: Collector) -> None:
    request = b'POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":'
    answer = _raw(collector, request, half_close=True)
    assert _status(answer) == 400
    assert b"truncated" in answer
    _still_serves(collector)


def test_body_longer_than_content_length_leaves_a_bad_request_line(collector: Collector) -> None:
    body = body_of([impression("x")])
    request = (
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(body) - 5}\r\n\r\n".encode()
        + body
    )
    answer = _raw(collector, request)
    assert _status(answer) == 400  # the body is cut short: invalid JSON
    assert collector.event_count() == 0
    _still_serves(collector)


def test_non_numeric_content_length_is_a_400(collector: Collector) -> None:
    answer = _raw(collector, b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n")
    assert _status(answer) == 400


def test_missing_content_length_is_a_411(collector: Collector) -> None:
    answer = _raw(collector, b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n")
    assert _status(answer) == 411


def test_chunked_body_is_accepted(collector: Collector) -> None:
    body = body_of([impression("chunky")])
    chunks = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:10], body[10:]))
    request = (
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    assert _status(_raw(collector, request)) == 204
    assert collector.event_count() == 1


def test_garbage_request_line_is_a_400_in_json(collector: Collector) -> None:
    answer = _raw(collector, b"\x00\x01\x02 nonsense\r\n\r\n")
    assert _status(answer) == 400
    assert b'{"error"' in answer
    _still_serves(collector)


def test_unsupported_method_is_answered(collector: Collector) -> None:
    answer = _raw(collector, b"DELETE /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status(answer) == 501


def test_post_to_another_path_is_a_404(collector: Collector) -> None:
    assert post(collector, b"{}", path="/v2/events")[0] == 404


def test_healthz_answers_without_a_token() -> None:
    with Collector(token="s3cret") as collector:
        status, _, body = get(collector, "/healthz")
    assert status == 200
    assert _json.loads(body)["status"] == "ok"


def test_client_that_stops_sending_mid_body_gets_a_400_after_the_read_timeout(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CollectorHandler, "timeout", 0.3)
    request = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    answer = _raw(collector, request)  # the socket stays open: the server must give up by itself
    assert _status(answer) == 400
    assert b"timed out" in answer
    _still_serves(collector)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    head=st.binary(max_size=300),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(["application/json", "text/plain", ""]),
)
def test_arbitrary_bytes_never_break_the_server(
    collector: Collector, head: bytes, body: bytes, content_type: str
) -> None:
    # Raw garbage, then a request with a random body: each gets an answer or a close, never a hang.
    answer = _raw(collector, head + b"\r\n\r\n", half_close=True)
    assert answer == b"" or answer.startswith(b"HTTP/1.")
    status, _, _ = post(collector, body, {"Content-Type": content_type})
    assert status in (400, 415)
    _still_serves(collector)
