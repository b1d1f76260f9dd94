"""``RetryPolicy``: when to try a request again, and how long to wait first.

The policy is a value (urllib3's ``Retry`` is the model): it is never mutated;
:meth:`RetryPolicy.increment` returns a copy that remembers one more attempt,
and :meth:`RetryPolicy.is_exhausted` says when to stop. It computes delays and
never sleeps: the driver waits on an event that ``close()`` sets, so every wait
is interruptible.

What is retried is decided once, by :func:`flagstream.delivery.result.classify`.
Each batch gets one deadline (``deadline`` seconds after its first attempt):
no retry starts, and no wait ends, after it.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from dataclasses import dataclass, field, replace

from flagstream.delivery.result import DispatchResult, Verdict
from flagstream.errors import ConfigurationError

__all__ = ["RetryPolicy", "parse_retry_after"]

_SECONDS = re.compile(r"^\s*([0-9]{1,10})\s*$")
_RNG = random.Random()


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    Returns ``None`` when the header is absent or unreadable, and never a
    negative number (a date in the past means "now").

    >>> parse_retry_after("1"), parse_retry_after(" 120 "), parse_retry_after("soon")
    (1.0, 120.0, None)
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0)
    60.0
    """
    if value is None:
        return None
    match = _SECONDS.match(value)
    if match:
        return float(int(match.group(1)))
    try:
        parsed = email.utils.parsedate_tz(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):  # pragma: no cover - defensive
        return None
    if parsed is None:
        return None
    try:
        when = float(email.utils.mktime_tz(parsed))
    except (OverflowError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when - current)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Immutable retry settings plus the history of one batch's attempts.

    * ``max_attempts``: attempts per request, the first included.
    * ``backoff_base`` / ``backoff_max``: the n-th retry waits a uniformly random
      time in ``[0, min(backoff_max, backoff_base * 2**(n-1))]`` ("full jitter"),
      which spreads retries of many processes over time.
    * ``respect_retry_after``: a ``Retry-After`` from the server is a floor on the wait.
    * ``deadline``: seconds from the first attempt after which the batch is given up.

    >>> policy = RetryPolicy(max_attempts=3)
    >>> policy = policy.increment(DispatchResult.from_status(503))
    >>> policy.attempts, policy.is_exhausted()
    (1, False)
    >>> policy.increment(DispatchResult.from_status(503)).increment(
    ...     DispatchResult.from_status(503)).is_exhausted()
    True
    """

    max_attempts: int = 20
    backoff_base: float = 0.1
    backoff_max: float = 10.0
    deadline: float = 120.0
    respect_retry_after: bool = True
    history: tuple[DispatchResult, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("RetryPolicy.max_attempts must be >= 1")
        if self.backoff_base < 0 or self.backoff_max < 0:
            raise ConfigurationError("RetryPolicy backoff values must be >= 0")
        if self.deadline <= 0:
            raise ConfigurationError("RetryPolicy.deadline must be > 0")

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that makes one attempt only."""
        return cls(max_attempts=1)

    @property
    def attempts(self) -> int:
        """Attempts recorded so far."""
        return len(self.history)

    @property
    def last(self) -> DispatchResult | None:
        """The most recent attempt's result, if any."""
        return self.history[-1] if self.history else None

    def new(self, **changes: float | bool) -> RetryPolicy:
        """A copy with some settings changed and the history kept."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def reset(self) -> RetryPolicy:
        """The same settings with an empty history, for the next batch."""
        return replace(self, history=()) if self.history else self

    def is_retry(self, result: DispatchResult) -> bool:
        """Whether ``result`` is the kind of failure worth another attempt."""
        return result.verdict is Verdict.RETRY

    def increment(self, result: DispatchResult) -> RetryPolicy:
        """A new policy that remembers ``result``; check :meth:`is_exhausted` next."""
        return replace(self, history=(*self.history, result))

    def is_exhausted(self) -> bool:
        """True when no attempt is left, or the last result must not be retried."""
        if len(self.history) >= self.max_attempts:
            return True
        last = self.last
        return last is not None and not self.is_retry(last)

    def get_backoff(self, rng: random.Random | None = None) -> float:
        """Seconds to wait before the next attempt (0 before the first).

        Full jitter under an exponential cap, raised to ``Retry-After`` when the
        last response carried one.
        """
        retries = len(self.history)
        if retries == 0:
            return 0.0
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** min(retries - 1, 62)))
        delay = (rng or _RNG).uniform(0.0, ceiling)
        last = self.history[-1]
        if self.respect_retry_after and last.retry_after is not None:
            delay = max(delay, last.retry_after)
        return delay

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_attempts={self.max_attempts}, backoff_base={self.backoff_base}, "
            f"backoff_max={self.backoff_max}, deadline={self.deadline}, attempts={self.attempts})"
        )
