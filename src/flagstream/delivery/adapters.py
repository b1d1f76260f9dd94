"""Turn any dispatcher into one that returns a :class:`DispatchResult`.

A user's dispatcher only has ``dispatch_event(log_event) -> None`` (the
optimizely-sdk duck type). For it, returning normally means delivered and an
exception means a retryable failure (we cannot know better); flagstream's own
dispatchers report the HTTP status through ``send``.
"""

from __future__ import annotations

import time
from typing import Any

from flagstream.delivery.protocols import EventDispatcher, ResultDispatcher
from flagstream.delivery.result import DispatchResult
from flagstream.errors import ConfigurationError

__all__ = ["PlainDispatcherAdapter", "as_result_dispatcher"]


class PlainDispatcherAdapter:
    """Wraps a plain ``dispatch_event`` dispatcher; ``send`` never raises."""

    __slots__ = ("dispatcher",)

    def __init__(self, dispatcher: EventDispatcher) -> None:
        self.dispatcher = dispatcher

    def dispatch_event(self, log_event: Any) -> None:
        """Forward to the wrapped dispatcher."""
        self.dispatcher.dispatch_event(log_event)

    def send(self, log_event: Any, deadline: float | None = None) -> DispatchResult:
        """Call ``dispatch_event`` once (``deadline`` cannot be enforced on foreign code)."""
        del deadline
        start = time.monotonic()
        try:
            self.dispatcher.dispatch_event(log_event)
        except Exception as exc:
            return DispatchResult.failure(
                f"dispatcher raised {type(exc).__name__}: {exc}", elapsed=time.monotonic() - start
            )
        return DispatchResult.success(elapsed=time.monotonic() - start)

    def close(self) -> None:
        """Nothing to release: the user owns the wrapped dispatcher."""


def as_result_dispatcher(dispatcher: object) -> ResultDispatcher:
    """``dispatcher`` itself when it has ``send``, else a :class:`PlainDispatcherAdapter`."""
    if isinstance(dispatcher, ResultDispatcher):
        return dispatcher
    if not callable(getattr(dispatcher, "dispatch_event", None)):
        raise ConfigurationError("event_dispatcher must have a dispatch_event(log_event) method")
    return PlainDispatcherAdapter(dispatcher)  # type: ignore[arg-type]
