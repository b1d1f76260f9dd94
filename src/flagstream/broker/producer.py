"""``RedisStreamDispatcher``: hand Event API requests to Redis Streams instead of the network.

The batch processor drives it like any dispatcher, so batching, queue bounds,
retries with backoff, counted drops, fork safety and the exit drain apply
unchanged; ``send`` runs on the processor's worker thread, never on the
caller's. One ``send`` is one pipelined round trip: an ``XADD`` of the body
(the exact bytes) with its url, headers, event count, producer id + sequence
(the idempotency key) and enqueue time, and the shard's cap check
(:data:`~flagstream.broker.scripts.TRIM`), which counts whatever the cap forces out.

A failed round trip (Redis down, slow, refusing, out of memory) is a
retryable :class:`~flagstream.delivery.result.DispatchResult` (no status, an
error text), exactly like a network error on the HTTP path.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from flagstream._logging import get_logger
from flagstream.broker.layout import StreamLayout, entry_fields
from flagstream.broker.scripts import TRIM
from flagstream.delivery.result import DispatchResult
from flagstream.errors import ConfigurationError
from flagstream.events.log_event import body_of

if TYPE_CHECKING:
    from flagstream.broker._client import RedisClient

__all__ = ["DEFAULT_MAX_LEN", "ProducerBase", "ProducerCounters", "RedisStreamDispatcher"]

#: Entries kept per shard before the oldest are trimmed (about 1-3 KB per event, times events per body).
DEFAULT_MAX_LEN = 100_000


def new_producer_id() -> bytes:
    """Unique per process: host, pid and a random part (a restarted pid gets a new id)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}".encode()


class ProducerCounters:
    """What one producer did: requests written, failures, and trim losses it caused."""

    __slots__ = ("entries", "events", "failures", "lost_pending", "lost_undelivered", "trimmed_acked")

    def __init__(self) -> None:
        self.entries = 0
        self.events = 0
        self.failures = 0
        self.trimmed_acked = 0
        self.lost_undelivered = 0
        self.lost_pending = 0

    def as_dict(self) -> dict[str, int]:
        """A snapshot."""
        return {name: getattr(self, name) for name in self.__slots__}


class ProducerBase:
    """What the thread and asyncio producers share: layout, identity, shard choice, counters."""

    def __init__(
        self,
        url_or_client: str | RedisClient,
        stream: str = "flagstream:events",
        *,
        shards: int = 1,
        shard: int | None = None,
        group: str = "forwarders",
        max_len: int = DEFAULT_MAX_LEN,
        socket_timeout: float = 2.0,
        connect_timeout: float = 1.0,
        cluster: bool | None = None,
        logger: object | None = None,
    ) -> None:
        self.layout = StreamLayout(stream, shards)
        if shard is not None and not 0 <= shard < shards:
            raise ConfigurationError(f"shard must be between 0 and {shards - 1}, got {shard!r}")
        if max_len < 1:
            raise ConfigurationError(f"max_len must be >= 1, got {max_len!r}")
        if not socket_timeout > 0 or not connect_timeout > 0:
            raise ConfigurationError("socket_timeout and connect_timeout must be > 0")
        if importlib.util.find_spec("redis") is None:
            raise ConfigurationError("the Redis broker needs redis-py: pip install 'flagstream[broker]'")
        # Import redis-py now, not on the first send: a first send in the exit drain would import
        # concurrent.futures (through redis.cluster), which refuses to load once the interpreter
        # is shutting down ("can't register atexit after shutdown").
        importlib.import_module("flagstream.broker._client")
        if isinstance(url_or_client, str):
            if not url_or_client.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigurationError(
                    f"broker URL must be redis://, rediss:// or unix://, got {url_or_client!r}"
                )
            self.url: str | None = url_or_client
            self._client: RedisClient | None = None
        else:
            self.url = None
            self._client = url_or_client
        self.group = group
        self.max_len = max_len
        self.socket_timeout = socket_timeout
        self.connect_timeout = connect_timeout
        self.cluster = cluster
        self.counters = ProducerCounters()
        self._pinned = shard
        self._logger = get_logger(logger)
        self._lock = threading.Lock()
        self._closed = False
        self._start_identity()

    def _start_identity(self) -> None:
        self._pid = os.getpid()
        self.producer_id = new_producer_id()
        self._seq = itertools.count(1)
        first = self._pinned if self._pinned is not None else hash(self.producer_id) % self.layout.shards
        self._shards = itertools.cycle([(first + i) % self.layout.shards for i in range(self.layout.shards)])
        self._groups_ready: set[int] = set()
        if self.url is not None:
            self._client = None  # a forked child builds its own (redis-py would reset the pool anyway)

    def _next_shard(self) -> int:
        if self._pinned is not None:
            return self._pinned
        with self._lock:
            return next(self._shards)

    def _fields(self, log_event: Any) -> tuple[int, dict[bytes, bytes]]:
        if self._pid != os.getpid():
            self._start_identity()
        body = body_of(log_event)
        return self._next_shard(), entry_fields(log_event, body, self.producer_id, next(self._seq))

    def _written(self, shard: int, fields: dict[bytes, bytes], trimmed: Any) -> None:
        acked, undelivered, pending = (int(x) for x in trimmed)
        self.counters.entries += 1
        self.counters.events += int(fields[b"n"])
        if acked or undelivered or pending:
            self._count_trim(shard, acked, undelivered, pending)

    def _failed(self, exc: BaseException, start: float) -> DispatchResult:
        self.counters.failures += 1
        self._groups_ready.clear()  # the server may have restarted without its data
        return DispatchResult.failure(f"redis: {type(exc).__name__}: {exc}", elapsed=time.monotonic() - start)

    def _count_trim(self, shard: int, acked: int, undelivered: int, pending: int) -> None:
        self.counters.trimmed_acked += acked
        if undelivered or pending:
            self.counters.lost_undelivered += undelivered
            self.counters.lost_pending += pending
            self._logger.warning(
                "flagstream: stream %s is over its cap of %d entries: trimmed %d entries never "
                "delivered and %d pending (their events are lost; add forwarders or raise max_len)",
                self.layout.events(shard),
                self.max_len,
                undelivered,
                pending,
            )


class RedisStreamDispatcher(ProducerBase):
    """An event dispatcher that appends each request body to a Redis stream.

    >>> dispatcher = RedisStreamDispatcher("redis://127.0.0.1:6379/0", shards=1)
    >>> # client = Optimizely(datafile, event_dispatcher=dispatcher)  # events go to Redis
    >>> dispatcher.close()

    ``url_or_client`` is a ``redis://`` URL (standalone or Cluster, detected) or a
    redis-py client. Requests are spread over ``shards`` streams round-robin,
    starting at a shard chosen by the producer id (``shard=`` pins one). Each
    shard keeps at most ``max_len`` entries; entries the cap evicts before they
    were acknowledged are counted in the shard's ``trim`` hash and in
    :attr:`counters`, and logged. ``group`` is created (from the start of the
    stream) so that entries written before any forwarder runs are kept for it.
    """

    def _connection(self) -> RedisClient:
        client = self._client
        if client is None:
            from flagstream.broker._client import connect  # noqa: PLC0415 (redis is an optional extra)

            assert self.url is not None
            client = connect(
                self.url,
                socket_timeout=self.socket_timeout,
                connect_timeout=self.connect_timeout,
                cluster=self.cluster,
            )
            self._client = client
        return client

    def _ensure_group(self, client: RedisClient, shard: int) -> None:
        import redis  # noqa: PLC0415

        try:
            client.xgroup_create(self.layout.events(shard), self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups_ready.add(shard)

    def send(self, log_event: Any, deadline: float | None = None) -> DispatchResult:
        """One pipelined ``XADD`` (+ cap check); never raises, retryable on any failure."""
        del deadline  # bounded by socket_timeout (and one reconnect), set at construction
        start = time.monotonic()
        if self._closed:
            return DispatchResult.failure("dispatcher is closed")
        try:
            shard, fields = self._fields(log_event)
            client = self._connection()
            if shard not in self._groups_ready:
                self._ensure_group(client, shard)
            key = self.layout.events(shard)
            pipe = client.pipeline(transaction=False)
            pipe.xadd(key, fields)  # type: ignore[arg-type]
            # EVAL by name: ClusterPipeline has no eval(), and routes EVAL by its keys.
            pipe.execute_command(
                "EVAL", TRIM, 2, key, self.layout.trim(shard), self.group, self.max_len, "cap"
            )
            _, trimmed = pipe.execute()
        except Exception as exc:
            return self._failed(exc, start)
        self._written(shard, fields, trimmed)
        return DispatchResult.success(elapsed=time.monotonic() - start)

    def dispatch_event(self, log_event: Any) -> None:
        """The optimizely-sdk duck type: one attempt; a failure is logged, never raised."""
        result = self.send(log_event)
        if not result.ok:
            self._logger.error("flagstream: could not hand an event request to Redis: %s", result.error)

    def close(self) -> None:
        """Release the connections this dispatcher opened. Idempotent."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None and self.url is not None and self._pid == os.getpid():
            client.close()

    def __repr__(self) -> str:
        return f"RedisStreamDispatcher(stream={self.layout.stream!r}, shards={self.layout.shards})"
