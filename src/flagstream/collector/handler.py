"""HTTP request handling: the Event API endpoint, the read APIs and the page.

Built on the standard library's ``http.server`` with HTTP/1.1 keep-alive and
one thread per connection. HTTP costs well under 1 µs per event of a batched
request; decoding the body is what costs, so with ``decode_workers`` it runs in
other processes (``bench/collector_ingest.py`` measures both). Every client mistake,
from a malformed request line to a truncated body, is answered with a JSON
error and never reaches the thread's exception hook.
"""

from __future__ import annotations

import hmac
import socket
import struct
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from flagstream import _json
from flagstream._version import __version__
from flagstream.collector.faults import FaultConfig, FaultOutcome
from flagstream.collector.validate import PayloadError

if TYPE_CHECKING:
    from flagstream.collector.server import CollectorHTTPServer

__all__ = ["EVENTS_PATH", "MAX_BODY_BYTES", "CollectorHandler"]

EVENTS_PATH = "/v1/events"
MAX_BODY_BYTES = int(3.5 * 1024 * 1024)  # the Event API's limit per request
_MAX_DECOMPRESSED = 8 * MAX_BODY_BYTES  # a gzip body may expand; a bomb may not
_DRAIN_LIMIT = 64 * 1024 * 1024  # read and discard an oversized body up to this, to answer 413 cleanly
_CHUNK = 1 << 16


class _HttpError(Exception):
    def __init__(self, status: int, message: str, *, close: bool = False, path: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close
        self.path = path


class CollectorHandler(BaseHTTPRequestHandler):
    """One connection's requests."""

    protocol_version = "HTTP/1.1"
    server_version = f"flagstream-collector/{__version__}"
    sys_version = ""
    default_request_version = "HTTP/1.0"  # so even a garbled request line gets a status line back
    disable_nagle_algorithm = True  # keep-alive with small answers: Nagle would add 40 ms per request
    timeout = 10.0  # a client that stops sending mid-request gets its connection closed, not a stuck thread
    server: CollectorHTTPServer

    # -- plumbing ---------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log.debug("collector %s " + format, self.client_address[0], *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol errors found by ``http.server`` (bad request line, headers) with JSON."""
        self.close_connection = True
        try:
            text = message or HTTPStatus(code).phrase
        except ValueError:
            text = message or "error"
        self._send_json(code, {"error": text})

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and status != 204 and self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, obj: object, headers: dict[str, str] | None = None) -> None:
        self._send(status, _json.dumps(obj), "application/json", headers)

    def _send_http_error(self, err: _HttpError) -> None:
        if err.close:
            self.close_connection = True
        body: dict[str, str] = {"error": err.message}
        if err.path is not None:
            body["path"] = err.path
        self._send_json(err.status, body)

    # -- reading the request body -----------------------------------------------------------------

    def _read_exactly(self, n: int) -> bytes:
        try:
            data = self.rfile.read(n)
        except TimeoutError:
            raise _HttpError(400, "body: timed out before Content-Length bytes arrived", close=True) from None
        if len(data) < n:
            raise _HttpError(400, f"body: truncated, got {len(data)} of {n} bytes", close=True)
        return data

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _HttpError(400, "body: malformed chunk size", close=True) from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are ignored
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise _HttpError(413, f"body: larger than {MAX_BODY_BYTES} bytes", close=True)
            parts.append(self._read_exactly(size))
            self._read_exactly(2)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise _HttpError(411, "Content-Length required", close=True)
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if length < 0:
            raise _HttpError(
                400, f"Content-Length: not a non-negative integer: {length_header!r}", close=True
            )
        if length > MAX_BODY_BYTES:
            if length > _DRAIN_LIMIT:
                raise _HttpError(413, f"body: larger than {MAX_BODY_BYTES} bytes", close=True)
            remaining = length
            while remaining:
                remaining -= len(self._read_exactly(min(remaining, _CHUNK)))
            raise _HttpError(413, f"body: {length} bytes, larger than {MAX_BODY_BYTES}")
        return self._read_exactly(length)

    def _decoded(self, body: bytes) -> bytes:
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("identity", ""):
            return body
        if encoding not in ("gzip", "x-gzip", "deflate"):
            raise _HttpError(415, f"Content-Encoding: {encoding!r} is not supported (use gzip)")
        decompressor = zlib.decompressobj(31 if "gzip" in encoding else 15)
        try:
            data = decompressor.decompress(body, _MAX_DECOMPRESSED)
            if decompressor.unconsumed_tail:
                raise _HttpError(413, f"body: decompresses to more than {_MAX_DECOMPRESSED} bytes")
            if not decompressor.eof:
                raise _HttpError(400, f"body: truncated {encoding} stream")
        except zlib.error as exc:
            raise _HttpError(400, f"body: invalid {encoding} data ({exc})") from None
        return data

    # -- POST /v1/events --------------------------------------------------------------------------

    def do_POST(self) -> None:
        """Receive one Event API batch."""
        if urlsplit(self.path).path != EVENTS_PATH:
            self.close_connection = True  # the body is not read; the connection cannot be reused
            self._send_json(404, {"error": f"not found; events go to POST {EVENTS_PATH}"})
            return
        state = self.server.state
        wire_bytes = 0
        try:
            raw = self._read_body()
            wire_bytes = len(raw)
            body = self._decoded(raw)
        except _HttpError as err:
            state.record(err.status, 0, wire_bytes)
            self._send_http_error(err)
            return
        state.record_body(body)
        outcome, faults = state.faults.draw()
        if faults.latency:
            state.stopping.wait(faults.latency)
        if outcome is not FaultOutcome.SERVE:
            self._inject(outcome, faults, body, wire_bytes)
            return
        content_type = self.headers.get("Content-Type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            state.record(415, 0, wire_bytes)
            self._send_json(415, {"error": f"Content-Type: expected application/json, got {content_type!r}"})
            return
        try:
            decoded = state.decode(body)
        except PayloadError as err:
            state.record_payload_error()
            state.record(400, 0, wire_bytes)
            self._send_json(400, {"error": str(err), "path": err.path})
            return
        state.store_batch(body, decoded)
        state.record(204, decoded.n_events, wire_bytes)
        self._send(204, b"", "")

    def _inject(self, outcome: FaultOutcome, faults: FaultConfig, body: bytes, wire_bytes: int) -> None:
        state = self.server.state
        try:
            n_events = state.decode(body).n_events
        except PayloadError:
            n_events = 0
        if outcome is FaultOutcome.RESET:
            state.record_fault("reset")
            state.record(0, n_events, wire_bytes)
            # Linger 0: closing sends a RST, as a crashed server or a dropped connection would.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        state.record_fault("fail")
        state.record(faults.status, n_events, wire_bytes)
        retry_after = faults.retry_after_header()
        headers = {"Retry-After": retry_after} if retry_after is not None else None
        self._send_json(faults.status, {"error": "injected fault"}, headers)

    # -- GET: read APIs, page, health, metrics ----------------------------------------------------

    def _authorized(self, query: dict[str, list[str]]) -> bool:
        token = self.server.state.token
        if token is None:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
        from_query = query.get("token", [""])[-1]
        return bool(from_query) and hmac.compare_digest(from_query.encode(), token.encode())

    def do_GET(self) -> None:
        """Serve the read APIs, the results page, ``/healthz`` and ``/metrics``."""
        from flagstream.collector import routes  # noqa: PLC0415 - routes import this module's names

        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/healthz":
            self._send_json(200, routes.health(self.server.state))
            return
        route = routes.GET_ROUTES.get(url.path)
        if route is None:
            self._send_json(404, {"error": f"not found: {url.path}"})
            return
        if not self._authorized(query):
            self._send_json(
                401, {"error": "a valid bearer token is required"}, {"WWW-Authenticate": "Bearer"}
            )
            return
        try:
            status, body, content_type = route(self.server.state, query)
        except routes.BadQueryError as err:
            self._send_json(400, {"error": str(err)})
            return
        self._send(status, body, content_type)

    def do_HEAD(self) -> None:
        """Answer like GET without a body."""
        self.do_GET()
