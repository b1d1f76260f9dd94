"""A real HTTP server on 127.0.0.1 that serves a datafile the test can change."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0  # seconds before the response starts (waits on the server's stop event)
    cut_after: int | None = None  # promise the whole body, send this many bytes, then hang up
    gzip: bool = False


@dataclass
class DatafileServer:
    """State shared with the handler. Tests change ``datafile`` or queue ``replies``."""

    datafile: dict[str, Any] | None = None
    last_modified: str | None = None
    required_token: str | None = None
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    closing: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def set_datafile(self, datafile: dict[str, Any], when: float) -> None:
        with self.changed:
            self.datafile = datafile
            self.last_modified = formatdate(when, usegmt=True)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.requests) >= count, timeout)

    def respond(self, headers: dict[str, str]) -> tuple[Reply, str | None]:
        with self.changed:
            self.requests.append(headers)
            self.changed.notify_all()
            if (
                self.required_token is not None
                and headers.get("Authorization") != f"Bearer {self.required_token}"
            ):
                return Reply(403, b"forbidden"), None
            if self.replies:
                return self.replies.pop(0), None
            if self.datafile is None:
                return Reply(404, b"no datafile"), None
            if self.last_modified is not None and headers.get("If-Modified-Since") == self.last_modified:
                return Reply(304), self.last_modified
            return Reply(200, json.dumps(self.datafile).encode()), self.last_modified


def _handler(state: DatafileServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            reply, last_modified = state.respond(dict(self.headers.items()) | {"path": self.path})
            if reply.delay and state.closing.wait(reply.delay):
                self.close_connection = True  # the client sees the connection drop at once
                return
            body = gzip.compress(reply.body) if reply.gzip else reply.body
            self.send_response(reply.status)
            if last_modified and reply.status == 200:
                self.send_header("Last-Modified", last_modified)
            if reply.gzip:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if reply.cut_after is not None:
                self.wfile.write(body[: reply.cut_after])
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve(datafile: dict[str, Any] | None = None) -> Iterator[DatafileServer]:
    state = DatafileServer()
    if datafile is not None:
        state.set_datafile(datafile, 1_700_000_000)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/datafiles/key.json"
    try:
        yield state
    finally:
        state.closing.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


class CapturingLogger:
    """A logger that keeps every line, by level."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def _log(self, level: str) -> Callable[..., None]:
        def log(msg: str, *args: object) -> None:
            with self.lock:
                self.lines.append((level, msg % args if args else msg))

        return log

    def __getattr__(self, level: str) -> Callable[..., None]:
        if level in ("debug", "info", "warning", "error", "exception"):
            return self._log(level)
        raise AttributeError(level)

    def at(self, level: str) -> list[str]:
        with self.lock:
            return [m for lvl, m in self.lines if lvl == level]
