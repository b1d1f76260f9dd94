"""Posting one stream entry: the unmodified body first, retries, and bisection of refusals.

The forwarder's counterpart of :func:`flagstream.delivery.plan.delivery_plan`,
which splits *user events*; here only request bodies exist. The same
:class:`~flagstream.delivery.retry.RetryPolicy` and
:func:`~flagstream.delivery.result.classify` decide, so both paths agree on
what is retried:

* 2xx: delivered.
* 408/429/5xx/no answer: retried with backoff inside the policy's deadline; if
  that runs out (or the forwarder stops, or loses the lease) the entry is
  left pending for a later delivery.
* another 4xx for a body of several visitors: the visitors are split in
  halves, each half re-serialized with the same envelope, until the server
  refuses single visitors; only those are dead-lettered. A body above the
  request limit is split the same way before it is ever sent.

The original bytes are what is sent first; only the halves of a refused or
oversized body are new bytes (their visitors unchanged, in order).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from flagstream import _json
from flagstream.broker.layout import Entry
from flagstream.delivery.plan import MAX_BISECTIONS
from flagstream.delivery.protocols import ResultDispatcher
from flagstream.delivery.result import DispatchResult, Verdict
from flagstream.delivery.retry import RetryPolicy
from flagstream.events.log_event import LogEvent

__all__ = ["DeadPart", "Settlement", "post_entry", "split_body"]


@dataclass(frozen=True, slots=True)
class DeadPart:
    """A part of an entry's body that will never be accepted, and why."""

    body: bytes
    events: int
    reason: str
    error: str


@dataclass(slots=True)
class Settlement:
    """What happened to one entry: delivered parts, dead parts, or left pending (``unsettled``)."""

    delivered_events: int = 0
    posts: int = 0
    retries: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    dead: list[DeadPart] = field(default_factory=list)
    unsettled: str | None = None
    last: DispatchResult | None = None


def split_body(body: bytes) -> tuple[bytes, bytes] | None:
    """Two bodies with the same envelope and the visitors in halves; None when it cannot split."""
    try:
        params = _json.loads_exact(body)
    except Exception:
        return None
    visitors = params.get("visitors") if isinstance(params, dict) else None
    if not isinstance(visitors, list) or len(visitors) < 2:
        return None
    middle = len(visitors) // 2
    return (
        _json.dumps({**params, "visitors": visitors[:middle]}),
        _json.dumps({**params, "visitors": visitors[middle:]}),
    )


def _visitors(body: bytes) -> int:
    return body.count(b'"snapshots":') or 1


def post_entry(
    sender: ResultDispatcher,
    entry: Entry,
    policy: RetryPolicy,
    max_request_bytes: int,
    clock: Callable[[], float],
    wait: Callable[[float], bool],
    still_mine: Callable[[], bool],
    hard_deadline: Callable[[], float],
    observe: Callable[[DispatchResult], None] | None = None,
    rng: random.Random | None = None,
) -> Settlement:
    """Deliver ``entry`` (see the module docstring).

    ``wait(seconds)`` returns True when the forwarder is stopping; ``still_mine()``
    is False once another forwarder owns the entry; ``hard_deadline()`` is the
    shutdown deadline (``inf`` while running); ``observe(result)`` sees every attempt as it ends.
    """
    settlement = Settlement()
    bodies = [entry.body]
    bisections = MAX_BISECTIONS
    while bodies:
        body = bodies.pop(0)
        if len(body) > max_request_bytes:
            halves = split_body(body)
            if halves is not None:
                bodies[:0] = halves
                continue
            error = f"body is {len(body)} bytes, above the {max_request_bytes} byte request limit"
            settlement.dead.append(DeadPart(body, _visitors(body), "too_large", error))
            continue
        log_event = LogEvent(entry.url, body=body, headers=entry.headers)
        attempts = policy.reset()
        deadline = clock() + attempts.deadline
        while True:
            if not still_mine():
                settlement.unsettled = "lease_lost"
                return settlement
            result = sender.send(log_event, min(deadline, hard_deadline()))
            settlement.posts += 1
            settlement.last = result
            key = str(result.status) if result.status is not None else "error"
            settlement.statuses[key] = settlement.statuses.get(key, 0) + 1
            if observe is not None:
                observe(result)
            attempts = attempts.increment(result)
            verdict = result.verdict
            if verdict is Verdict.DELIVERED:
                settlement.delivered_events += _visitors(body)
                break
            if verdict is Verdict.REJECT:
                halves = split_body(body) if bisections > 0 else None
                if halves is not None:
                    bisections -= 1
                    bodies[:0] = halves
                else:
                    error = result.error or f"HTTP {result.status}"
                    settlement.dead.append(DeadPart(body, _visitors(body), "rejected", error))
                break
            if attempts.is_exhausted():
                settlement.unsettled = "retry_exhausted"
                return settlement
            delay = attempts.get_backoff(rng)
            if clock() + delay >= min(deadline, hard_deadline()):
                settlement.unsettled = "retry_exhausted" if clock() + delay >= deadline else "shutdown"
                return settlement
            settlement.retries += 1
            if wait(delay):
                settlement.unsettled = "shutdown"
                return settlement
    return settlement
