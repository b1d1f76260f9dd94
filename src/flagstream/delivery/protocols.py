"""What users implement and what the client calls: dispatchers and processors.

``EventDispatcher`` is the duck type optimizely-sdk uses (``dispatch_event``),
so a dispatcher written for optimizely-sdk works in flagstream and
flagstream's dispatchers work inside optimizely-sdk.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from flagstream.events.user_event import UserEvent

if TYPE_CHECKING:
    from flagstream.delivery.result import DispatchResult
    from flagstream.delivery.spool.segment import SpooledEvent

__all__ = [
    "AsyncResultDispatcher",
    "DeadLetterHandler",
    "EventDispatcher",
    "EventProcessor",
    "ResultDispatcher",
]


@runtime_checkable
class EventDispatcher(Protocol):
    """Sends one Event API request.

    ``log_event`` has ``url``, ``http_verb``, ``params`` and ``headers``
    (flagstream's :class:`~flagstream.events.log_event.LogEvent` also carries the
    serialized ``body``). Implementations should not raise; flagstream catches and
    counts anything they do raise.
    """

    def dispatch_event(self, log_event: Any) -> None: ...


@runtime_checkable
class EventProcessor(Protocol):
    """Takes user events from the client and gets them delivered."""

    def process(self, user_event: UserEvent) -> None: ...

    def stop(self) -> None: ...


@runtime_checkable
class ResultDispatcher(Protocol):
    """A dispatcher that also reports what happened: flagstream's own, or any with ``send``.

    ``send`` makes exactly one attempt and never raises; ``deadline`` is a
    ``time.monotonic()`` value by which it returns (``None``: its own default).
    Retrying is the caller's job (the batch processor, or ``dispatch_event``).
    """

    def dispatch_event(self, log_event: Any) -> None: ...

    def send(self, log_event: Any, deadline: float | None = None) -> DispatchResult: ...


@runtime_checkable
class AsyncResultDispatcher(Protocol):
    """The asyncio twin of :class:`ResultDispatcher` (one attempt, never raises)."""

    def asend(self, log_event: Any, deadline: float | None = None) -> Awaitable[DispatchResult]: ...


class DeadLetterHandler(Protocol):
    """Receives each event the server refused on its own (or that can never be sent), with why.

    With a durable spool the event is a :class:`~flagstream.delivery.spool.SpooledEvent`
    (its context and the exact visitor JSON sent), since a replayed event has no user event.
    """

    def __call__(self, event: UserEvent | SpooledEvent, result: DispatchResult) -> None: ...
