"""``ForwarderSettings``: every knob of ``flagstream forward``, validated once."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace

from flagstream.delivery.retry import RetryPolicy
from flagstream.delivery.settings import MAX_REQUEST_BYTES
from flagstream.errors import ConfigurationError

__all__ = ["ForwarderSettings", "default_consumer_name"]


def default_consumer_name() -> str:
    """``<host>-<pid>``: unique, but not stable across restarts (give ``name`` for that)."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class ForwarderSettings:
    """How a forwarder reads, posts, keeps leases and cleans up.

    * ``name``: the consumer name. Make it stable (pod name, systemd instance) so a
      restarted forwarder first re-reads its own pending entries.
    * ``window``: entries per ``XREADGROUP``; ``block_ms``: how long one read waits
      (kept below ``socket_timeout``, or redis-py would report a timeout).
    * ``min_idle``: seconds an entry must sit unacknowledged before another forwarder
      may claim it; a forwarder re-claims its own every ``lease_interval`` (a third of it).
    * ``max_deliveries``: an entry delivered more often is dead-lettered (``max_deliveries``).
    * ``retry``: the policy each body is retried under (its deadline may exceed ``min_idle``:
      the lease is kept).
    * ``shutdown_timeout``: seconds from SIGTERM to exit; what is unfinished stays pending.
    """

    stream: str = "flagstream:events"
    shards: int = 1
    group: str = "forwarders"
    name: str = field(default_factory=default_consumer_name)
    endpoint: str | None = None
    concurrency: int = 4
    window: int = 50
    block_ms: int = 1000
    min_idle: float = 60.0
    max_deliveries: int = 5
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=20, deadline=120.0))
    post_timeout: float = 10.0
    shutdown_timeout: float = 10.0
    janitor_interval: float = 60.0
    janitor_idle: float = 3600.0
    trim_interval: float = 5.0
    max_request_bytes: int = MAX_REQUEST_BYTES
    socket_timeout: float = 5.0
    max_connections: int = 0

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise ConfigurationError(f"name must be a non-empty word, got {self.name!r}")
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(f"endpoint must be an http(s) URL, got {self.endpoint!r}")
        for name in ("concurrency", "window", "max_deliveries", "shards"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("min_idle", "post_timeout", "shutdown_timeout", "socket_timeout", "trim_interval"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not 1 <= self.block_ms < self.socket_timeout * 1000:
            raise ConfigurationError(
                f"block_ms ({self.block_ms}) must be between 1 and socket_timeout ({self.socket_timeout}s): "
                "a blocking read longer than the socket timeout fails instead of returning empty"
            )
        if self.post_timeout >= self.min_idle:
            raise ConfigurationError(
                "post_timeout must be shorter than min_idle (one POST may not outlive a lease)"
            )

    @property
    def lease_interval(self) -> float:
        """How often held entries are re-claimed: well inside ``min_idle``."""
        return self.min_idle / 3.0

    @property
    def reclaim_interval(self) -> float:
        """How often idle entries of other consumers are looked for."""
        return max(0.2, self.min_idle / 2.0)

    def replace(self, **changes: object) -> ForwarderSettings:
        """A copy with some settings changed."""
        return replace(self, **changes)  # type: ignore[arg-type]
