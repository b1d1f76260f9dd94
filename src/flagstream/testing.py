"""Helpers for testing code that uses flagstream.

``CapturingEventDispatcher`` records every Event API request instead of
sending it, so a test can assert on what the application would send:

    dispatcher = CapturingEventDispatcher()
    client = Optimizely(datafile, event_processor=ForwardingEventProcessor(dispatcher))
    client.track("purchase", "user-1")
    assert dispatcher.event_keys() == ["purchase"]

It also works with the batching processor (``Optimizely(datafile,
event_dispatcher=dispatcher)``); then use :meth:`wait_for_events` or
``client.flush()`` before asserting. And it works inside optimizely-sdk,
which calls the same ``dispatch_event``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flagstream.events.log_event import body_of

__all__ = ["CapturingEventDispatcher"]


class CapturingEventDispatcher:
    """An event dispatcher that records requests in memory (thread-safe)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._log_events: list[Any] = []

    def dispatch_event(self, log_event: Any) -> None:
        with self._cond:
            self._log_events.append(log_event)
            self._cond.notify_all()

    @property
    def log_events(self) -> list[Any]:
        """The requests received, oldest first."""
        with self._cond:
            return list(self._log_events)

    def bodies(self) -> list[bytes]:
        """The exact bytes each request would have sent."""
        return [body_of(e) for e in self.log_events]

    def events(self) -> list[dict[str, Any]]:
        """Every snapshot event of every request, with its ``visitor_id`` added."""
        out: list[dict[str, Any]] = []
        for log_event in self.log_events:
            for visitor in log_event.params.get("visitors", ()):
                for snapshot in visitor.get("snapshots", ()):
                    out.extend(
                        {**e, "visitor_id": visitor.get("visitor_id")} for e in snapshot.get("events", ())
                    )
        return out

    def event_keys(self) -> list[str]:
        """The ``key`` of every snapshot event (``campaign_activated`` for impressions)."""
        return [e["key"] for e in self.events()]

    def wait_for_events(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` snapshot events were captured, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                captured = sum(
                    len(s.get("events", ()))
                    for e in self._log_events
                    for v in e.params.get("visitors", ())
                    for s in v.get("snapshots", ())
                )
                remaining = deadline - time.monotonic()
                if captured >= count:
                    return True
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def clear(self) -> None:
        with self._cond:
            self._log_events.clear()
