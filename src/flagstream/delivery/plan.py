"""How one window of events is delivered, written once for both drivers (no I/O).

:func:`delivery_plan` is a generator: it serializes events into Event API
requests and decides what happens next, and the driver carries the actions
out. The thread driver answers with blocking calls, the asyncio driver with
awaits; neither contains any delivery logic of its own.

Actions (yielded) and what the driver sends back:

* :class:`Send` -> the :class:`DispatchResult` of one attempt;
* :class:`Wait` -> ``None`` when the backoff elapsed, or a drop reason
  (``"shutdown"``, ``"retry_exhausted"``) when it cannot or must not finish;
* :class:`Settle` -> ``None``; the driver records counters, logs, and calls the
  outcome and dead-letter callbacks.

Rules applied here: events sharing an :class:`EventContext` go in one request,
a context change starts another; a request body above the byte limit is split
in halves (a lone event above it is rejected as ``too_large``); retryable
failures are retried under the policy within one deadline per request group;
a non-retryable answer (400 ...) for several events bisects them so that only
the events the server refuses on their own are dead-lettered (within a budget
of :data:`MAX_BISECTIONS` splits, so a server that refuses everything does not
get hundreds of requests).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from flagstream.delivery.result import DispatchResult, Verdict
from flagstream.delivery.retry import RetryPolicy
from flagstream.events.log_event import LogEvent
from flagstream.events.payload import build_log_event
from flagstream.events.user_event import EventContext

__all__ = [
    "MAX_BISECTIONS",
    "Action",
    "Deliverable",
    "Plan",
    "Send",
    "Settle",
    "Wait",
    "delivery_plan",
    "group_by_context",
]

#: Splits allowed per context group after non-retryable answers. One bad event in a batch of
#: 500 needs about 9; a server that refuses everything costs at most this many extra requests
#: before the rest of the group is dead-lettered as ``rejected``.
MAX_BISECTIONS = 32


class Deliverable(Protocol):
    """What a plan delivers: a user event, or an event read back from the spool."""

    @property
    def context(self) -> EventContext: ...


D = TypeVar("D", bound=Deliverable)
Builder = Callable[[Sequence[D]], LogEvent]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``log_event`` once; ``deadline`` is a ``time.monotonic()`` value."""

    log_event: LogEvent
    deadline: float
    attempt: int
    events: int


@dataclass(frozen=True, slots=True)
class Wait:
    """Back off for ``delay`` seconds, unless that would pass ``deadline`` or close() interrupts."""

    delay: float
    deadline: float


@dataclass(frozen=True, slots=True)
class Settle:
    """``events`` events are done: delivered, or dropped for ``reason``.

    ``items`` are those events (a durable spool acknowledges exactly these, or
    keeps them for a later attempt when the reason is retryable); ``dead`` are
    the ones to hand to the dead-letter handler.
    """

    events: int
    delivered: bool
    reason: str | None = None
    result: DispatchResult | None = None
    dead: tuple[Deliverable, ...] = ()
    items: tuple[Deliverable, ...] = field(default=(), compare=False, repr=False)


Action = Send | Wait | Settle
Plan = Generator[Action, "DispatchResult | str | None", None]


def group_by_context(events: Sequence[D]) -> list[list[D]]:
    """Split ``events`` into groups that share one context, keeping queue order within each."""
    if not events:
        return []
    # Fast path: events of one config share the very same context object; no hashing needed.
    first = events[0].context
    for event in events:
        if event.context is not first:
            break
    else:
        return [list(events)]
    groups: dict[EventContext, list[D]] = {}
    for event in events:
        context = event.context
        group = groups.get(context)
        if group is None:
            groups[context] = [event]
        else:
            group.append(event)
    return list(groups.values())


def delivery_plan(
    events: Sequence[D],
    policy: RetryPolicy,
    max_request_bytes: int,
    clock: Callable[[], float],
    rng: random.Random | None = None,
    build: Builder[D] | None = None,
) -> Plan:
    """The actions that deliver ``events`` (see the module docstring).

    ``build`` makes one request from events of one context; the default is
    :func:`~flagstream.events.payload.build_log_event` for user events.
    """
    builder: Builder[D] = build or build_log_event  # type: ignore[assignment]
    for group in group_by_context(events):
        run = _Run(
            policy.reset(),
            max_request_bytes,
            clock() + policy.deadline,
            rng,
            MAX_BISECTIONS,
            builder,  # type: ignore[arg-type]
        )
        yield from _deliver(group, run, policy.reset())


@dataclass(slots=True)
class _Run:
    """What the requests of one context group share: settings, deadline, bisection budget."""

    policy: RetryPolicy
    limit: int
    deadline: float
    rng: random.Random | None
    bisections: int
    build: Builder[Deliverable]


def _deliver(events: Sequence[Deliverable], run: _Run, policy: RetryPolicy) -> Plan:
    try:
        log_event = run.build(events)
    except Exception as exc:  # a bad event must not take the worker down
        if len(events) > 1:
            yield from _halves(events, run)
            return
        error = f"cannot serialize event: {exc!r}"
        yield Settle(1, False, "internal_error", DispatchResult.failure(error), tuple(events), tuple(events))
        return
    if len(log_event.body) > run.limit:
        if len(events) > 1:
            yield from _halves(events, run)
            return
        error = f"event body is {len(log_event.body)} bytes, above the {run.limit} byte request limit"
        yield Settle(1, False, "too_large", DispatchResult.failure(error), tuple(events), tuple(events))
        return
    while True:
        result = yield Send(log_event, run.deadline, policy.attempts + 1, len(events))
        assert isinstance(result, DispatchResult)
        policy = policy.increment(result)
        result = replace(result, attempts=policy.attempts)  # the outcome reports all attempts made
        verdict = result.verdict
        if verdict is Verdict.DELIVERED:
            yield Settle(len(events), True, None, result, (), tuple(events))
            return
        if verdict is Verdict.REJECT:
            if len(events) > 1 and run.bisections > 0:
                yield from _halves(events, run)
                return
            # One event the server refuses on its own; or so many refusals that the server
            # rejects everything (wrong endpoint, auth): stop bisecting and dead-letter them.
            yield Settle(len(events), False, "rejected", result, tuple(events), tuple(events))
            return
        if policy.is_exhausted():
            yield Settle(len(events), False, "retry_exhausted", result, (), tuple(events))
            return
        stop = yield Wait(policy.get_backoff(run.rng), run.deadline)
        if stop is not None:
            yield Settle(len(events), False, str(stop), result, (), tuple(events))
            return


def _halves(events: Sequence[Deliverable], run: _Run) -> Plan:
    run.bisections -= 1
    middle = len(events) // 2
    yield from _deliver(events[:middle], run, run.policy)
    yield from _deliver(events[middle:], run, run.policy)
