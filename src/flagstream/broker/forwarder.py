"""``Forwarder``: read stream entries through a consumer group, POST them, acknowledge after settlement.

``concurrency`` worker threads each take a window of entries (reclaimed ones
first, then this consumer's own pending entries, then new ones), post each
body through one pooled :class:`~flagstream.delivery.http.HttpDispatcher`
(:func:`~flagstream.broker.posting.post_entry`), and settle it:

* delivered: ``XACK`` (one per window);
* refused or undeliverable parts, too many deliveries, garbage: ``XADD`` to the
  shard's dead-letter stream with the reason *and* ``XACK``, in one ``MULTI``;
* anything else (retry deadline, shutdown, lease lost): left pending, so a
  peer (or this forwarder, later) delivers it after ``min_idle``.

The maintenance thread (:mod:`flagstream.broker.maintenance`) keeps leases,
reclaims idle entries, trims acknowledged ones and removes idle consumers.
``request_stop()`` (SIGTERM) stops reading; work in hand finishes by the
shutdown deadline; the rest stays pending for peers.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flagstream._logging import get_logger
from flagstream.broker._client import RedisClient, connect, describe, server_version
from flagstream.broker.layout import Entry, MalformedEntry, StreamLayout
from flagstream.broker.maintenance import Maintenance
from flagstream.broker.metrics import ForwarderMetrics
from flagstream.broker.posting import DeadPart, post_entry
from flagstream.broker.reading import Item, LeaseRegistry, ReadQueue, parse_read
from flagstream.broker.settings import ForwarderSettings
from flagstream.delivery.http import HttpDispatcher
from flagstream.delivery.protocols import ResultDispatcher
from flagstream.delivery.result import DispatchResult, Verdict

__all__ = ["Forwarder"]

_NEVER = float("inf")


class Forwarder:
    """One forwarder process's work (``flagstream forward`` runs one per process).

    >>> forwarder = Forwarder("redis://127.0.0.1:6379/0", ForwarderSettings(name="fw-1"))
    >>> # forwarder.run()  # until request_stop() or SIGTERM
    """

    def __init__(
        self,
        url_or_client: str | RedisClient,
        settings: ForwarderSettings | None = None,
        *,
        sender: ResultDispatcher | None = None,
        logger: object | None = None,
        cluster: bool | None = None,
    ) -> None:
        self.settings = settings or ForwarderSettings()
        s = self.settings
        self.layout = StreamLayout(s.stream, s.shards)
        self._url = url_or_client if isinstance(url_or_client, str) else None
        self._client: RedisClient | None = None if isinstance(url_or_client, str) else url_or_client
        self._cluster = cluster
        self.sender = sender or HttpDispatcher(
            timeout=s.post_timeout,
            read_timeout=s.post_timeout,
            endpoint=s.endpoint,
            max_connections=s.max_connections or s.concurrency,
        )
        self._logger = get_logger(logger)
        self.metrics = ForwarderMetrics()
        self.leases = LeaseRegistry()
        self.queue = ReadQueue(s.shards)
        self.stopping = threading.Event()
        self.hard_deadline = _NEVER
        self.exit_deadline = _NEVER
        self._workers: list[threading.Thread] = []
        self._rotation = 0
        self._rotation_lock = threading.Lock()
        self._last_error_log = 0.0
        #: XACKDEL (Redis 8.2+) instead of XACK: None until the server's version is known.
        self.use_xackdel: bool | None = None
        self.maintenance = Maintenance(self)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def client(self) -> RedisClient:
        """The shared redis-py client (thread-safe; connected on first use)."""
        if self._client is None:
            assert self._url is not None
            self._client = connect(
                self._url,
                socket_timeout=self.settings.socket_timeout,
                cluster=self._cluster,
                block_ms=self.settings.block_ms,
            )
        return self._client

    def start(self) -> None:
        """Start the workers and the maintenance thread."""
        for i in range(self.settings.concurrency):
            thread = threading.Thread(target=self._work, name=f"flagstream-forward-{i}", daemon=True)
            thread.start()
            self._workers.append(thread)
        self.maintenance.start()

    def request_stop(self, timeout: float | None = None) -> None:
        """Stop reading; unfinished work must end within ``timeout`` (default ``shutdown_timeout``)."""
        budget = self.settings.shutdown_timeout if timeout is None else timeout
        if not self.stopping.is_set():
            now = time.monotonic()
            self.exit_deadline = now + budget
            # Work (POSTs, retries) ends earlier, leaving time to acknowledge what was delivered.
            self.hard_deadline = now + max(budget * 0.8, budget - 1.0)
            self.stopping.set()
            self.metrics.running = False

    def wait(self) -> bool:
        """After :meth:`request_stop`: join workers by the deadline; True when all ended in time."""
        for thread in self._workers:
            thread.join(max(0.0, self.exit_deadline - time.monotonic()))
        finished = not any(t.is_alive() for t in self._workers)
        self.maintenance.stop(max(0.1, self.exit_deadline - time.monotonic()))
        self.sender_close()
        return finished

    def close(self) -> None:
        """Close the HTTP pool, and the Redis client if this forwarder built it from a URL."""
        self.sender_close()
        if self._url is not None and self._client is not None:
            self._client.close()
            self._client = None

    def sender_close(self) -> None:
        """Close the HTTP pool (if it has ``close``)."""
        closer = getattr(self.sender, "close", None)
        if callable(closer):
            closer()

    def run(self) -> bool:
        """Start, serve until :meth:`request_stop`, then shut down; True when it ended in time."""
        self.start()
        self.stopping.wait()
        return self.wait()

    # -- errors ---------------------------------------------------------------------------

    def redis_failed(self, exc: BaseException, doing: str) -> None:
        """Count a failed round trip and log it (at most once per 10 s)."""
        self.metrics.add("redis_errors")
        now = time.monotonic()
        if now - self._last_error_log >= 10.0:
            self._last_error_log = now
            self._logger.error("flagstream forward: %s failed: %s (retrying)", doing, describe(exc))

    def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopping; True when stopping."""
        return self.stopping.wait(seconds)

    # -- reading --------------------------------------------------------------------------

    def _next_window(self) -> tuple[int, list[Item]] | None:
        s = self.settings
        claimed = self.queue.take_claimed(s.window)
        if claimed is not None:
            return claimed
        if self.queue.history:
            with self.queue.history_lock:
                for shard, cursor in list(self.queue.history.items()):
                    window = self._read_history(shard, cursor)
                    if window:
                        return shard, window
                    del self.queue.history[shard]
        with self._rotation_lock:
            shard = self._rotation % s.shards
            self._rotation += 1
        block = s.block_ms if s.shards == 1 else max(50, s.block_ms // s.shards)
        key = self.layout.events(shard)
        reply = self.client.xreadgroup(s.group, s.name, {key: ">"}, count=s.window, block=block)
        self.metrics.redis_ok()
        entries = parse_read(reply)
        if not entries:
            return None
        self.leases.hold(shard, [i for i, _ in entries])
        return shard, [Item(shard, i, f, 1) for i, f in entries]

    def _read_history(self, shard: int, cursor: bytes) -> list[Item]:
        s = self.settings
        key = self.layout.events(shard)
        entries = parse_read(self.client.xreadgroup(s.group, s.name, {key: cursor}, count=s.window))
        self.metrics.redis_ok()
        if not entries:
            return []
        self.queue.history[shard] = entries[-1][0]
        ids = [i for i, _ in entries]
        self.leases.hold(shard, ids)
        counts = self.delivery_counts(shard, ids)
        return [Item(shard, i, f, counts.get(i, 1)) for i, f in entries]

    def delivery_counts(self, shard: int, ids: list[bytes]) -> dict[bytes, int]:
        """Times delivered of this consumer's pending ``ids`` (from ``XPENDING``)."""
        if not ids:
            return {}
        rows = self.client.xpending_range(
            self.layout.events(shard),
            self.settings.group,
            min=min(ids),
            max=max(ids),
            count=self.leases.count() + len(ids) + 16,
            consumername=self.settings.name,
        )
        return {_as_bytes(row["message_id"]): int(row["times_delivered"]) for row in rows}

    def ensure_group(self, shard: int) -> None:
        """Create the consumer group (from the start of the stream) if it is missing."""
        import redis  # noqa: PLC0415

        try:
            self.client.xgroup_create(self.layout.events(shard), self.settings.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # -- the worker loop ------------------------------------------------------------------

    def _work(self) -> None:
        import redis  # noqa: PLC0415

        backoff = 0.1
        while not self.stopping.is_set():
            try:
                window = self._next_window()
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    try:
                        for shard in self.layout.all_shards():
                            self.ensure_group(shard)
                        continue
                    except Exception as inner:
                        exc = inner  # type: ignore[assignment]
                self.redis_failed(exc, "reading the stream")
                self._pause(backoff)
                backoff = min(5.0, backoff * 2)
                continue
            except Exception as exc:
                self.redis_failed(exc, "reading the stream")
                self._pause(backoff)
                backoff = min(5.0, backoff * 2)
                continue
            backoff = 0.1
            if window is not None:
                self._process(*window)

    def _process(self, shard: int, items: list[Item]) -> None:
        s = self.settings
        self.metrics.add("read", len(items))
        records = self.leases.records(shard, [item.id for item in items])  # held since they were read
        acks: list[bytes] = []
        try:
            for item in items:
                if time.monotonic() >= self.hard_deadline:
                    break
                record = records[item.id]
                if not item.fields:  # trimmed while pending: the body is gone
                    self.metrics.add("lost_to_trim")
                    acks.append(item.id)
                    continue
                try:
                    entry = Entry.decode(item.id, item.fields)
                except MalformedEntry as exc:
                    self._dead_letter_raw(shard, item, f"malformed: {exc}")
                    continue
                if not entry.url and s.endpoint is None:
                    self._dead_letter_raw(shard, item, "malformed: no url (field u) and no --endpoint")
                    continue
                if item.deliveries > s.max_deliveries:
                    part = DeadPart(
                        entry.body, entry.events, "max_deliveries", f"delivered {item.deliveries} times"
                    )
                    self._dead_letter(shard, entry, [part])
                    continue
                settlement = post_entry(
                    self.sender,
                    entry,
                    s.retry,
                    s.max_request_bytes,
                    time.monotonic,
                    self._pause,
                    lambda record=record: not record.lost,  # type: ignore[misc]
                    lambda: self.hard_deadline,
                    self._observe,
                )
                self.metrics.add("events_delivered", settlement.delivered_events)
                if settlement.unsettled is not None:
                    self.metrics.add("left_pending")
                elif settlement.dead:
                    self._dead_letter(shard, entry, settlement.dead)
                else:
                    acks.append(item.id)
                if len(acks) >= 16:
                    self._ack(shard, acks)
                    acks = []
        finally:
            self._ack(shard, acks)
            # Entries not reached (shutdown) stay pending without a lease: after min_idle a peer
            # (or this forwarder, restarted under its name) delivers them.
            self.leases.release(shard, [item.id for item in items])

    def _observe(self, result: DispatchResult) -> None:
        status = str(result.status) if result.status is not None else "error"
        self.metrics.posted({status: 1}, result.elapsed, 1)
        if not result.ok and result.verdict is Verdict.RETRY:
            self.metrics.add("retried")

    # -- settling -------------------------------------------------------------------------

    def _retrying(self, doing: str, call: Any) -> bool:
        """Run ``call()`` until it succeeds, for up to 5 s (and never past the exit deadline)."""
        end = min(time.monotonic() + 5.0, self.exit_deadline - 0.1)
        delay = 0.05
        while True:
            try:
                call()
            except Exception as exc:
                self.redis_failed(exc, doing)
                if time.monotonic() + delay >= end:
                    return False
                time.sleep(delay)
                delay = min(1.0, delay * 2)
                continue
            self.metrics.redis_ok()
            return True

    def _ack(self, shard: int, ids: list[bytes]) -> None:
        if not ids:
            return
        key = self.layout.events(shard)
        if self._retrying("XACK", lambda: self._ack_once(key, ids)):
            self.metrics.add("acked", len(ids))

    def _ack_once(self, key: str, ids: list[bytes]) -> None:
        """``XACKDEL ... ACKED`` where the server has it (8.2+: the entry goes once every group
        acknowledged it), else ``XACK``; any error from ``XACKDEL`` turns it off for good."""
        import redis  # noqa: PLC0415

        if self.use_xackdel is None:
            self.use_xackdel = server_version(self.client) >= (8, 2)
        if self.use_xackdel:
            try:
                command = ("XACKDEL", key, self.settings.group, "ACKED", "IDS", len(ids), *ids)
                self.client.execute_command(*command)  # type: ignore[no-untyped-call]
            except redis.ResponseError as exc:
                self._logger.warning("flagstream forward: XACKDEL refused (%s); using XACK", exc)
                self.use_xackdel = False
            else:
                return
        self.client.xack(key, self.settings.group, *ids)

    def _dead_letter(self, shard: int, entry: Entry, parts: list[DeadPart]) -> None:
        now = str(int(time.time() * 1000)).encode()
        rows = []
        for part in parts:
            rows.append(
                {
                    b"b": part.body,
                    b"u": entry.url.encode(),
                    b"h": _headers(entry),
                    b"n": str(part.events).encode(),
                    b"p": entry.producer,
                    b"q": str(entry.seq).encode(),
                    b"t": str(entry.enqueued_ms).encode(),
                    b"v": b"1",
                    b"reason": part.reason.encode(),
                    b"error": part.error.encode(),
                    b"src": entry.id,
                    b"at": now,
                }
            )
        self._commit_dead(shard, entry.id, rows)

    def _dead_letter_raw(self, shard: int, item: Item, reason: str) -> None:
        fields = dict(item.fields)
        fields.update(
            {b"reason": reason.encode(), b"src": item.id, b"at": str(int(time.time() * 1000)).encode()}
        )
        self._logger.error("flagstream forward: entry %s: %s (dead-lettered)", item.id.decode(), reason)
        self._commit_dead(shard, item.id, [fields])

    def _commit_dead(self, shard: int, entry_id: bytes, rows: list[dict[bytes, bytes]]) -> None:
        events, dlq = self.layout.events(shard), self.layout.dlq(shard)

        def commit() -> None:
            pipe = self.client.pipeline(transaction=True)  # one hash tag: one slot, so MULTI works in Cluster
            for row in rows:
                pipe.xadd(dlq, row)  # type: ignore[arg-type]
            pipe.xack(events, self.settings.group, entry_id)
            pipe.execute()

        if self._retrying("dead-lettering", commit):
            self.metrics.add("dead_lettered", len(rows))
            self.metrics.add("acked")


def _as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _headers(entry: Entry) -> bytes:
    from flagstream import _json  # noqa: PLC0415

    return _json.dumps(entry.headers)
