"""``AsyncRedisStreamDispatcher``: the asyncio twin of the producer, for ``AsyncBatchEventProcessor``.

Same entries, same shards, same cap check, over ``redis.asyncio``. That client
has no fork check of its own and its connections belong to one event loop, so
the dispatcher builds its client lazily and again whenever the process id or
the running loop changed (a forked worker, or a new ``asyncio.run``).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from flagstream.broker.producer import ProducerBase
from flagstream.broker.scripts import TRIM
from flagstream.delivery.result import DispatchResult

__all__ = ["AsyncRedisStreamDispatcher"]


class AsyncRedisStreamDispatcher(ProducerBase):
    """Appends each request body to a Redis stream from the event loop.

    >>> dispatcher = AsyncRedisStreamDispatcher("redis://127.0.0.1:6379/0")
    >>> # processor = AsyncBatchEventProcessor(dispatcher)

    Takes the options of :class:`~flagstream.broker.producer.RedisStreamDispatcher`
    (a URL only: an asyncio client cannot be shared across forks or loops).
    """

    def __init__(self, url: str, stream: str = "flagstream:events", **options: Any) -> None:
        if not isinstance(url, str):
            raise TypeError(
                "AsyncRedisStreamDispatcher takes a redis:// URL (it builds its own client per loop)"
            )
        super().__init__(url, stream, **options)
        self._aclient: Any = None
        self._bound: tuple[int, int] = (0, 0)

    def _aconnection(self) -> Any:
        loop = asyncio.get_running_loop()
        key = (os.getpid(), id(loop))
        if self._aclient is None or self._bound != key:
            import redis.asyncio  # noqa: PLC0415 (the broker extra)
            from redis.asyncio.retry import Retry  # noqa: PLC0415
            from redis.backoff import NoBackoff  # noqa: PLC0415

            assert self.url is not None
            options: dict[str, Any] = {
                "socket_timeout": self.socket_timeout,
                "socket_connect_timeout": self.connect_timeout,
                "retry": Retry(NoBackoff(), 1),
            }
            if self.cluster:
                from redis.asyncio.cluster import RedisCluster  # noqa: PLC0415

                self._aclient = RedisCluster.from_url(self.url, **options)
            else:
                self._aclient = redis.asyncio.Redis.from_url(self.url, **options)
            self._bound = key
            self._groups_ready = set()
        return self._aclient

    async def asend(self, log_event: Any, deadline: float | None = None) -> DispatchResult:
        """One pipelined ``XADD`` (+ cap check) awaited on the loop; never raises."""
        del deadline
        start = time.monotonic()
        if self._closed:
            return DispatchResult.failure("dispatcher is closed")
        try:
            shard, fields = self._fields(log_event)
            client = self._aconnection()
            key = self.layout.events(shard)
            if shard not in self._groups_ready:
                import redis  # noqa: PLC0415

                try:
                    await client.xgroup_create(key, self.group, id="0", mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
                self._groups_ready.add(shard)
            pipe = client.pipeline(transaction=False)
            pipe.xadd(key, fields)
            # EVAL by name: ClusterPipeline has no eval(), and routes EVAL by its keys.
            pipe.execute_command(
                "EVAL", TRIM, 2, key, self.layout.trim(shard), self.group, self.max_len, "cap"
            )
            _, trimmed = await pipe.execute()
        except Exception as exc:
            return self._failed(exc, start)
        self._written(shard, fields, trimmed)
        return DispatchResult.success(elapsed=time.monotonic() - start)

    def dispatch_event(self, log_event: Any) -> None:
        """Not usable outside a loop (it is driven by ``asend``): logs one error, sends nothing."""
        self._logger.error(
            "flagstream: AsyncRedisStreamDispatcher.dispatch_event was called; use it with "
            "AsyncBatchEventProcessor (asend). The request was not sent: %r",
            log_event,
        )

    async def aclose(self) -> None:
        """Close the client of the current loop. Idempotent."""
        self._closed = True
        client, self._aclient = self._aclient, None
        if client is not None and self._bound[0] == os.getpid():
            await client.aclose()

    def __repr__(self) -> str:
        return f"AsyncRedisStreamDispatcher(stream={self.layout.stream!r}, shards={self.layout.shards})"
