"""The forwarder's counters, and the HTTP endpoint that exposes them.

``GET /metrics`` answers in the Prometheus text format (0.0.4);
``GET /healthz`` answers 200 while the forwarder runs and its last Redis round
trip succeeded recently, 503 otherwise (a load balancer or Kubernetes probe
takes it out of rotation; it is not restarted for a Redis outage).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["COUNTERS", "ForwarderMetrics", "MetricsServer"]

#: Counter name -> help text. ``posted`` is also broken down by status (``posted_by_status``).
COUNTERS = {
    "read": "stream entries read (new, own pending and reclaimed)",
    "events_delivered": "events in bodies the endpoint accepted",
    "posted": "POST attempts",
    "acked": "entries acknowledged after settlement",
    "retried": "POST retries after a retryable answer",
    "reclaimed": "entries claimed from idle consumers (XAUTOCLAIM)",
    "dead_lettered": "entries (or parts) moved to the dead-letter stream",
    "lost_to_trim": "pending entries the server had deleted by trimming (acknowledged, counted)",
    "left_pending": "entries left pending for a later delivery (retry deadline, shutdown, lease lost)",
    "redis_errors": "failed Redis round trips",
    "consumers_removed": "idle consumers with nothing pending removed by the janitor",
}


class ForwarderMetrics:
    """Thread-safe counters plus a POST latency summary."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.by_status: dict[str, int] = {}
        self.latency_sum = 0.0
        self.latency_count = 0
        self._latencies: list[float] = []
        self.last_redis_ok = time.monotonic()
        self.started = time.monotonic()
        self.running = True

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``."""
        if n:
            with self._lock:
                self.counts[name] += n

    def posted(self, statuses: dict[str, int], seconds: float, posts: int) -> None:
        """Record POST outcomes by status and their wall time."""
        with self._lock:
            for status, n in statuses.items():
                self.by_status[status] = self.by_status.get(status, 0) + n
                self.counts["posted"] += n
            if posts:
                self.latency_sum += seconds
                self.latency_count += posts
                self._latencies.append(seconds / posts)
                if len(self._latencies) > 4096:
                    del self._latencies[:2048]

    def redis_ok(self) -> None:
        """A Redis round trip succeeded."""
        self.last_redis_ok = time.monotonic()

    def snapshot(self) -> dict[str, float]:
        """Counters, statuses (``posted_<status>``) and latency quantiles, for the live view and tests."""
        with self._lock:
            data: dict[str, float] = dict(self.counts)
            for status, n in self.by_status.items():
                data[f"posted_{status}"] = n
            ordered = sorted(self._latencies)
        if ordered:
            data["latency_p50"] = ordered[len(ordered) // 2]
            data["latency_p99"] = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return data

    def healthy(self, stale_after: float = 15.0) -> bool:
        """Running, and Redis answered within ``stale_after`` seconds."""
        return self.running and time.monotonic() - self.last_redis_ok < stale_after

    def prometheus(self) -> str:
        """The Prometheus text exposition of every metric."""
        lines: list[str] = []
        with self._lock:
            counts = dict(self.counts)
            statuses = dict(self.by_status)
            total, count = self.latency_sum, self.latency_count
        for name, help_text in COUNTERS.items():
            metric = f"flagstream_forwarder_{name}_total"
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
            if name == "posted":
                lines += [f'{metric}{{status="{s}"}} {n}' for s, n in sorted(statuses.items())]
                if not statuses:
                    lines.append(f"{metric} 0")
            else:
                lines.append(f"{metric} {counts[name]}")
        lines += [
            "# HELP flagstream_forwarder_post_seconds wall time of POST attempts",
            "# TYPE flagstream_forwarder_post_seconds summary",
            f"flagstream_forwarder_post_seconds_sum {total:.6f}",
            f"flagstream_forwarder_post_seconds_count {count}",
            "# HELP flagstream_forwarder_up 1 while the forwarder runs and reaches Redis",
            "# TYPE flagstream_forwarder_up gauge",
            f"flagstream_forwarder_up {1 if self.healthy() else 0}",
        ]
        return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves :class:`ForwarderMetrics` on ``host:port`` from a daemon thread."""

    def __init__(self, metrics: ForwarderMetrics, port: int, host: str = "127.0.0.1") -> None:
        owner = metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] == "/metrics":
                    self._answer(200, owner.prometheus(), "text/plain; version=0.0.4")
                elif self.path.split("?", 1)[0] in ("/healthz", "/health"):
                    ok = owner.healthy()
                    self._answer(200 if ok else 503, "ok\n" if ok else "unhealthy\n", "text/plain")
                else:
                    self._answer(404, "not found: GET /metrics or /healthz\n", "text/plain")

            def _answer(self, status: int, text: str, content_type: str) -> None:
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="flagstream-metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
