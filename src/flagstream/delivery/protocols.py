"""What users implement and what the client calls: dispatchers and processors.

``EventDispatcher`` is the duck type optimizely-sdk uses (``dispatch_event``),
so a dispatcher written for optimizely-sdk works in flagstream and
flagstream's dispatchers work inside optimizely-sdk.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from flagstream.events.user_event import UserEvent

__all__ = ["EventDispatcher", "EventProcessor"]


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
