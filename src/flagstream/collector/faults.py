"""Fault injection for testing dispatchers against a server that misbehaves on purpose.

A :class:`FaultConfig` is a value; the collector holds one at a time and
:meth:`~flagstream.collector.Collector.set_faults` swaps it while running.
:class:`FaultInjector` draws from one seeded random generator, so a seeded
configuration gives the same sequence of outcomes for the same sequence of
requests.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from enum import Enum

from flagstream.errors import ConfigurationError

__all__ = ["FaultConfig", "FaultInjector", "FaultOutcome"]


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """How the collector misbehaves on ``POST /v1/events``.

    ``fail_rate`` of requests (0.0-1.0) are answered with ``status`` (and a
    ``Retry-After: <retry_after>`` header when set) without storing anything;
    every request waits ``latency`` seconds before it is answered; ``reset_rate``
    of connections are closed without any answer. ``seed`` makes the draws
    reproducible.

    >>> FaultConfig(fail_rate=0.2, status=429, retry_after=1).is_active
    True
    """

    fail_rate: float = 0.0
    status: int = 500
    retry_after: float | None = None
    latency: float = 0.0
    reset_rate: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("fail_rate", "reset_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ConfigurationError(f"{name} must be between 0 and 1, got {rate!r}")
        if not 200 <= self.status <= 599:  # a 1xx is not a final answer
            raise ConfigurationError(f"status must be an HTTP status code 200-599, got {self.status!r}")
        if self.latency < 0:
            raise ConfigurationError(f"latency must be >= 0, got {self.latency!r}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ConfigurationError(f"retry_after must be >= 0, got {self.retry_after!r}")

    @property
    def is_active(self) -> bool:
        """True when any fault is turned on."""
        return self.fail_rate > 0 or self.latency > 0 or self.reset_rate > 0

    def retry_after_header(self) -> str | None:
        """The ``Retry-After`` header value (whole seconds, rounded up), or None."""
        if self.retry_after is None:
            return None
        whole = int(self.retry_after)
        return str(whole if whole == self.retry_after else whole + 1)


class FaultOutcome(Enum):
    """What the collector does with one request."""

    SERVE = "serve"
    FAIL = "fail"
    RESET = "reset"


class FaultInjector:
    """Draws the outcome of each request from the current :class:`FaultConfig`."""

    __slots__ = ("_config", "_lock", "_random")

    def __init__(self, config: FaultConfig) -> None:
        self._lock = threading.Lock()
        self._config = config
        self._random = random.Random(config.seed)

    @property
    def config(self) -> FaultConfig:
        """The configuration in force."""
        return self._config

    def replace(self, config: FaultConfig) -> None:
        """Put ``config`` in force; a new seed restarts the random sequence."""
        with self._lock:
            self._config = config
            self._random = random.Random(config.seed)

    def draw(self) -> tuple[FaultOutcome, FaultConfig]:
        """The outcome for the next request, with the configuration it was drawn from."""
        with self._lock:
            config = self._config
            if config.reset_rate > 0 and self._random.random() < config.reset_rate:
                return FaultOutcome.RESET, config
            if config.fail_rate > 0 and self._random.random() < config.fail_rate:
                return FaultOutcome.FAIL, config
            return FaultOutcome.SERVE, config
