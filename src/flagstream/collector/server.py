"""The collector's lifecycle: a threaded HTTP server started in the background.

:class:`Collector` is what tests, benchmarks, the demo and the CLI use::

    with Collector(faults=FaultConfig(fail_rate=0.2, status=503)) as collector:
        client = Optimizely(datafile, event_endpoint=collector.events_url)
        ...
        assert collector.wait_for_events(100, timeout=5.0)
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from flagstream.collector.faults import FaultConfig
from flagstream.collector.handler import EVENTS_PATH, CollectorHandler
from flagstream.collector.state import CollectorState, RequestRecord
from flagstream.errors import ConfigurationError, FlagstreamError

__all__ = ["Collector", "CollectorHTTPServer"]

_LOG = logging.getLogger("flagstream.collector")


class CollectorHTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` that knows its open connections, so stopping never waits on idle keep-alives."""

    daemon_threads = True
    block_on_close = False  # handler threads are joined by Collector.stop, within its deadline
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: CollectorState) -> None:
        self.state = state
        self.log = _LOG
        self._conn_lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        if ":" in address[0]:
            self.address_family = socket.AF_INET6  # e.g. "::1"
        super().__init__(address, CollectorHandler)

    def track(self, connection: socket.socket) -> None:
        """Register a connection as its handler thread starts."""
        with self._conn_lock:
            self._connections[connection] = threading.current_thread()
            if self.state.stopping.is_set():
                _shutdown(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a connection as its handler thread ends."""
        with self._conn_lock:
            self._connections.pop(connection, None)

    def close_connections(self) -> list[threading.Thread]:
        """Shut every open connection down; returns the threads still serving them."""
        with self._conn_lock:
            for connection in self._connections:
                _shutdown(connection)
            return list(self._connections.values())

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished mid-request is routine; log it quietly, never on stderr."""
        _LOG.debug("collector connection from %s ended with an error", client_address, exc_info=True)


def _shutdown(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer
        connection.shutdown(socket.SHUT_RDWR)


class Collector:
    """A local Event-API-compatible server with storage, results and fault injection.

    ``port=0`` picks a free port. ``db`` is a SQLite file path or ``":memory:"``.
    ``token``, when set, is required as a bearer token on the read APIs and the
    page (``POST /v1/events`` stays open, as the Event API is). ``keep_raw_bodies``
    keeps every decompressed request body for :meth:`raw_bodies`.
    ``decode_workers=N`` decodes large bodies in N worker processes, started
    with the collector, so ingest is not limited to one core (answers are the
    same; see :mod:`flagstream.collector.workers`).

    >>> with Collector() as collector:  # doctest: +SKIP
    ...     collector.events_url
    'http://127.0.0.1:50123/v1/events'
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        db: str = ":memory:",
        faults: FaultConfig | None = None,
        token: str | None = None,
        keep_raw_bodies: bool = False,
        decode_workers: int = 0,
    ) -> None:
        if token is not None and not token:
            raise ConfigurationError("token must be a non-empty string or None")
        if isinstance(decode_workers, bool) or not 0 <= decode_workers <= 64:
            raise ConfigurationError(f"decode_workers must be between 0 and 64, got {decode_workers!r}")
        self._decode_workers = decode_workers
        self._host = host
        self._requested_port = port
        self._state = CollectorState(db, faults or FaultConfig(), token, keep_raw_bodies)
        self._server: CollectorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._port = port

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Collector:
        """Bind and serve in a background thread; returns once the port is listening.

        A collector runs once: after :meth:`stop` (its database is closed) make a new one.
        """
        if self._stopped:
            raise FlagstreamError("a stopped Collector cannot be started again; make a new one")
        if self._server is not None:
            return self
        try:
            self._server = CollectorHTTPServer((self._host, self._requested_port), self._state)
            self._state.start_workers(self._decode_workers)
        except BaseException:
            if self._server is not None:
                self._server.server_close()
                self._server = None
            self._state.close()
            raise
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"flagstream-collector-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop serving, close connections and the database; True when every thread ended in time."""
        server, self._server = self._server, None
        self._stopped = True
        if server is None:
            return self._state.close()
        deadline = time.monotonic() + timeout
        self._state.stopping.set()
        server.shutdown()
        threads = server.close_connections()
        server.server_close()
        clean = True
        for thread in [self._thread, *threads]:
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
                clean = clean and not thread.is_alive()
        workers_clean = self._state.close(max(0.0, deadline - time.monotonic()))
        return clean and workers_clean

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- where it listens -------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address it listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port it listens on (the chosen one when started with ``port=0``; kept after stop)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://HOST:PORT``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def events_url(self) -> str:
        """The Event API endpoint to give a client: ``url + "/v1/events"``."""
        return self.url + EVENTS_PATH

    # -- faults -----------------------------------------------------------------------------------

    @property
    def faults(self) -> FaultConfig:
        """The fault configuration in force."""
        return self._state.faults.config

    def set_faults(self, faults: FaultConfig) -> None:
        """Change the injected faults while running (``FaultConfig()`` turns them off)."""
        self._state.faults.replace(faults)

    # -- what was received ------------------------------------------------------------------------

    def wait_for_events(self, n: int, timeout: float) -> bool:
        """True once ``n`` unique events are stored; False when ``timeout`` seconds pass first."""
        return self._state.wait_for_events(n, timeout)

    def event_count(self) -> int:
        """Unique events stored."""
        return self._state.store.event_count

    def duplicate_count(self) -> int:
        """Events received again (same uuid, entity_id and timestamp) and ignored."""
        return self._state.store.duplicate_count

    def raw_bodies(self) -> list[bytes]:
        """Every decompressed ``POST /v1/events`` body received, oldest first (needs ``keep_raw_bodies``)."""
        return self._state.raw_bodies()

    def request_log(self) -> list[RequestRecord]:
        """``(status, time.monotonic(), n_events)`` per ``POST /v1/events``; status 0 marks a reset."""
        return self._state.request_log()

    def decode_worker_pids(self) -> list[int]:
        """Process ids of the decode workers (empty without ``decode_workers``), e.g. to measure their CPU."""
        workers = self._state.workers
        return [] if workers is None else workers.pids()

    @property
    def state(self) -> CollectorState:
        """The shared state (storage, counters) for the results and page code."""
        return self._state
