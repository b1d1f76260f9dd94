"""``ForwardingEventProcessor``: one request per event, sent on the caller's thread.

This is optimizely-sdk's synchronous processor, kept for users who want the
old behaviour (or who forward events elsewhere themselves): each user event
becomes a :class:`~flagstream.events.log_event.LogEvent` at once and goes to
``event_dispatcher.dispatch_event`` before ``process()`` returns. Dispatcher
exceptions are caught and logged; nothing is queued, retried or counted here.
Prefer :class:`~flagstream.delivery.processor.BatchEventProcessor` in production.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flagstream._logging import get_logger
from flagstream.delivery.protocols import EventDispatcher
from flagstream.errors import ConfigurationError
from flagstream.events.payload import build_log_event
from flagstream.events.user_event import UserEvent

__all__ = ["ForwardingEventProcessor"]


class ForwardingEventProcessor:
    """Builds and dispatches one request per user event, synchronously.

    >>> class Printer:
    ...     def dispatch_event(self, log_event):
    ...         print(log_event.http_verb, log_event.url)
    >>> processor = ForwardingEventProcessor(Printer())
    """

    def __init__(
        self,
        event_dispatcher: EventDispatcher,
        logger: object | None = None,
        on_log_event: Callable[[Any], None] | None = None,
    ) -> None:
        if not callable(getattr(event_dispatcher, "dispatch_event", None)):
            raise ConfigurationError("event_dispatcher must have a dispatch_event(log_event) method")
        self.event_dispatcher = event_dispatcher
        self._logger = get_logger(logger)
        self._on_log_event = on_log_event

    def attach_listeners(
        self, on_log_event: Callable[[Any], None] | None, on_outcome: Callable[[Any], None] | None = None
    ) -> None:
        """Called by the client that uses this processor, so its LOG_EVENT listeners see the
        requests; a callback given to the constructor is kept."""
        del on_outcome  # a synchronous forwarder reports no delivery outcomes
        if self._on_log_event is None:
            self._on_log_event = on_log_event

    def process(self, user_event: UserEvent) -> None:
        """Build the request for ``user_event`` and dispatch it now; never raises."""
        try:
            log_event = build_log_event([user_event])
        except Exception as exc:
            self._logger.error("flagstream: cannot build an event request: %r", exc)
            return
        if self._on_log_event is not None:
            try:
                self._on_log_event(log_event)
            except Exception as exc:
                self._logger.error("flagstream: LOG_EVENT listener raised %r", exc)
        try:
            self.event_dispatcher.dispatch_event(log_event)
        except Exception as exc:
            self._logger.error("flagstream: error dispatching event to %s: %r", log_event.url, exc)

    def flush(self, timeout: float | None = None) -> None:
        """Nothing is ever queued: returns at once."""
        del timeout

    def stop(self) -> None:
        """Nothing to stop (the dispatcher belongs to the caller)."""

    def close(self, timeout: float | None = None) -> None:
        """Same as :meth:`stop`."""
        del timeout
