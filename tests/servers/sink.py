"""A minimal Event-API-like sink with a per-request rule, for content-based faults.

The tools engineer's ``flagstream.collector`` covers random faults; this sink
answers by looking at each request (e.g. 400 for batches containing a bad
event), records raw bodies, timestamps and statuses, and de-duplicates nothing.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Sink"]

Rule = Callable[[bytes, int], "tuple[int, dict[str, str]]"]


def _accept_all(body: bytes, n: int) -> tuple[int, dict[str, str]]:
    return 204, {}


class Sink:
    def __init__(self, rule: Rule = _accept_all, *, tls: tuple[str, str] | None = None) -> None:
        self.rule = rule
        self.paths: list[str] = []
        self.lock = threading.Condition()
        self.log: list[tuple[float, int, bytes, dict[str, str]]] = []  # (time, status, body, headers)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with sink.lock:
                    n = len(sink.log)
                status, extra = sink.rule(body, n)
                with sink.lock:
                    sink.paths.append(self.path)
                    sink.log.append((time.monotonic(), status, body, dict(self.headers)))
                    sink.lock.notify_all()
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/v1/events"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    def accepted_bodies(self) -> list[bytes]:
        with self.lock:
            return [body for _, status, body, _ in self.log if 200 <= status < 300]

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.lock:
            return self.lock.wait_for(predicate, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
