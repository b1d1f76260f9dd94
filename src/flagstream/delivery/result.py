"""What one delivery attempt produced, and what to do about it.

Every HTTP status and transport error is classified here, in one function
(:func:`classify`), so the retry policy, the thread driver and the asyncio
driver cannot disagree about what is worth retrying:

* 2xx                                  -> ``Verdict.DELIVERED``
* no status (network error, timeout)   -> ``Verdict.RETRY``
* 408, 429, 5xx                        -> ``Verdict.RETRY``
* anything else (other 4xx, 3xx, 1xx)  -> ``Verdict.REJECT`` (never retried:
  the same bytes would get the same answer; the batch is bisected and the bad
  events dead-lettered)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["DeliveryOutcome", "DispatchResult", "Verdict", "classify"]

_RETRYABLE_4XX = frozenset({408, 429})


class Verdict(enum.Enum):
    """What the processor does with a request after one attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"
    REJECT = "reject"


def classify(status: int | None) -> Verdict:
    """Classify one attempt by its HTTP status (``None`` when no response came back).

    >>> classify(204), classify(None), classify(503), classify(429), classify(400)
    (<Verdict.DELIVERED: 'delivered'>, <Verdict.RETRY: 'retry'>, <Verdict.RETRY: 'retry'>,\
 <Verdict.RETRY: 'retry'>, <Verdict.REJECT: 'reject'>)
    """
    if status is None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status >= 500 or status in _RETRYABLE_4XX:
        return Verdict.RETRY
    return Verdict.REJECT


@dataclass(frozen=True, slots=True)
class DispatchResult:
    """The result of sending one Event API request (one attempt, or the last of several).

    ``status`` is ``None`` when no HTTP response was received (``error`` then says
    why: connection refused, reset, timeout, deadline exceeded, or the exception a
    user's dispatcher raised). ``retry_after`` is the server's ``Retry-After`` in
    seconds, already parsed. ``elapsed`` is wall time in seconds over all attempts.

    >>> DispatchResult.success(204, elapsed=0.01).ok
    True
    """

    ok: bool
    status: int | None = None
    attempts: int = 1
    error: str | None = None
    elapsed: float = 0.0
    retry_after: float | None = None

    @property
    def verdict(self) -> Verdict:
        """:func:`classify` applied to this result."""
        if self.ok:
            return Verdict.DELIVERED
        verdict = classify(self.status)
        # A failure that still carries a 2xx (a reply cut short) is retried, never counted delivered.
        return Verdict.RETRY if verdict is Verdict.DELIVERED else verdict

    @classmethod
    def success(cls, status: int | None = None, *, elapsed: float = 0.0) -> DispatchResult:
        """A delivered request (``status`` is ``None`` for dispatchers that do not report one)."""
        return cls(ok=True, status=status, elapsed=elapsed)

    @classmethod
    def from_status(
        cls, status: int, *, elapsed: float = 0.0, retry_after: float | None = None
    ) -> DispatchResult:
        """A result for an HTTP response: ``ok`` exactly when the status is 2xx."""
        ok = 200 <= status < 300
        return cls(
            ok=ok,
            status=status,
            error=None if ok else f"HTTP {status}",
            elapsed=elapsed,
            retry_after=retry_after,
        )

    @classmethod
    def failure(cls, error: str, *, elapsed: float = 0.0) -> DispatchResult:
        """A request that got no HTTP response (network error, timeout, dispatcher exception)."""
        return cls(ok=False, status=None, error=error, elapsed=elapsed)


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened to some events: the payload of the delivery-outcome notification.

    ``delivered`` is true when ``events`` events reached the server; otherwise
    they were dropped and ``reason`` says why (``queue_full``, ``block_timeout``,
    ``too_large``, ``rejected``, ``retry_exhausted``, ``shutdown``, ``closed``,
    ``internal_error``, and with a spool ``spool_cap``, ``spool_age``,
    ``spool_corrupt``, ``spool_disk_error``). ``result`` is the last dispatch
    result when a request was made. ``replayed`` is true for events a stopped
    process left in the spool.
    """

    delivered: bool
    events: int
    reason: str | None = None
    result: DispatchResult | None = None
    replayed: bool = False
