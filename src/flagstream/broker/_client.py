"""Building redis-py clients the way the broker needs them (imported only with the ``broker`` extra).

* Timeouts are ours, not redis-py 8's defaults (5 s, ten retries with backoff):
  one reconnect for a pooled connection that went stale, then the failure is a
  result and the caller's retry policy decides.
* Standalone or Cluster is detected once with ``INFO cluster`` (or forced with
  ``cluster=``), so the same ``redis://`` URL works for both.
* A forwarder's blocking ``XREADGROUP`` must end before the socket timeout or
  redis-py reports a timeout instead of an empty read: :func:`connect` takes
  the longest ``BLOCK`` the caller will use and sizes the socket timeout above it.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from flagstream.errors import ConfigurationError

__all__ = ["RedisClient", "connect", "describe", "server_version"]

RedisClient = redis.Redis | RedisCluster


def _options(socket_timeout: float, connect_timeout: float) -> dict[str, Any]:
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(NoBackoff(), 1),
        "health_check_interval": 0,
    }


def connect(
    url: str,
    *,
    socket_timeout: float = 2.0,
    connect_timeout: float = 1.0,
    cluster: bool | None = None,
    block_ms: int = 0,
) -> RedisClient:
    """A client for ``url`` (``redis://``, ``rediss://`` or ``unix://``); may raise redis errors."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(f"broker URL must start with redis://, rediss:// or unix://, got {url!r}")
    if block_ms and block_ms / 1000.0 >= socket_timeout:
        socket_timeout = block_ms / 1000.0 + 2.0
    options = _options(socket_timeout, connect_timeout)
    if cluster is None:
        probe = redis.Redis.from_url(url, **options)
        try:
            cluster = str(probe.info("cluster").get("cluster_enabled", 0)) == "1"
        finally:
            probe.close()
    if cluster:
        return RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)


def server_version(client: RedisClient) -> tuple[int, ...]:
    """The server's version as a tuple (the lowest over a Cluster's nodes)."""
    info: Any = client.info("server")
    if isinstance(info, dict) and "redis_version" not in info:  # RedisCluster: one dict per node
        versions = [str(v.get("redis_version", "0")) for v in info.values() if isinstance(v, dict)]
    else:
        versions = [str(info.get("redis_version", "0"))]
    return min(tuple(int(p) for p in v.split(".") if p.isdigit()) for v in versions)


def describe(exc: BaseException) -> str:
    """One line for a redis-py failure."""
    return f"redis: {type(exc).__name__}: {exc}"
