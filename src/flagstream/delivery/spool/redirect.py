"""``RedirectingDispatcher``: send the same bytes to another endpoint (``spool drain --endpoint``)."""

from __future__ import annotations

from typing import Any

from flagstream.delivery.http import HttpDispatcher
from flagstream.delivery.result import DispatchResult
from flagstream.events.log_event import LogEvent, body_of

__all__ = ["RedirectingDispatcher"]


class RedirectingDispatcher:
    """Posts every request's unmodified body to ``endpoint`` instead of its own URL."""

    def __init__(self, inner: HttpDispatcher, endpoint: str) -> None:
        self._inner = inner
        self.endpoint = endpoint

    def _moved(self, log_event: Any) -> LogEvent:
        return LogEvent(self.endpoint, None, "POST", dict(log_event.headers), body_of(log_event))

    def send(self, log_event: Any, deadline: float | None = None) -> DispatchResult:
        """One attempt to the other endpoint."""
        return self._inner.send(self._moved(log_event), deadline)

    def dispatch_event(self, log_event: Any) -> None:
        """optimizely-sdk's call: one attempt, errors swallowed by the inner dispatcher."""
        self._inner.dispatch_event(self._moved(log_event))

    def close(self) -> None:
        """Close the inner dispatcher's connections."""
        self._inner.close()
