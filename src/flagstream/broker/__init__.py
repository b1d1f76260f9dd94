"""Scale-out on Redis Streams: applications hand events to Redis, forwarders deliver them.

::

    apps (BatchEventProcessor) ─▶ RedisStreamDispatcher ─▶ Redis / Redis Cluster ─▶ flagstream forward ─▶ Event API
       batching, bounds, retry       XADD of the exact        flagstream:{s<k>}:events   XREADGROUP, POST, XACK,
       on the worker thread          body bytes               (+ :dlq, :trim)             reclaim, dead-letter

Needs the ``broker`` extra (``pip install 'flagstream[broker]'``); ``import
flagstream`` never imports this package. See ``docs/scale-out.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flagstream.broker.aio import AsyncRedisStreamDispatcher
    from flagstream.broker.forwarder import Forwarder
    from flagstream.broker.layout import Entry, MalformedEntry, StreamLayout
    from flagstream.broker.producer import DEFAULT_MAX_LEN, RedisStreamDispatcher
    from flagstream.broker.settings import ForwarderSettings
    from flagstream.broker.status import ShardStatus

# Imported on first use, so that `flagstream --help` (which registers the broker commands)
# and `import flagstream.broker` work without redis installed.
_WHERE = {
    "AsyncRedisStreamDispatcher": "aio",
    "DEFAULT_MAX_LEN": "producer",
    "Entry": "layout",
    "Forwarder": "forwarder",
    "ForwarderSettings": "settings",
    "MalformedEntry": "layout",
    "RedisStreamDispatcher": "producer",
    "ShardStatus": "status",
    "StreamLayout": "layout",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'flagstream.broker' has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    return getattr(importlib.import_module(f"flagstream.broker.{module}"), name)


__all__ = [
    "DEFAULT_MAX_LEN",
    "AsyncRedisStreamDispatcher",
    "Entry",
    "Forwarder",
    "ForwarderSettings",
    "MalformedEntry",
    "RedisStreamDispatcher",
    "ShardStatus",
    "StreamLayout",
]
