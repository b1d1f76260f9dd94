"""Notification listeners, with optimizely-sdk's types, arguments and method names.

    center = NotificationCenter()
    center.add_notification_listener(NotificationTypes.DECISION, on_decision)

``LOG_EVENT`` fires on the delivery worker just before a request is sent (as
optimizely-sdk's batch processor does); ``DELIVERY`` is flagstream's own and
fires once per event outcome batch: delivered, or dropped with a reason.
A listener that raises is logged and never affects the caller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final

from flagstream._logging import get_logger

__all__ = ["DecisionNotificationTypes", "NotificationCenter", "NotificationTypes"]


class NotificationTypes:
    """Notification types; each value names its listener's arguments (as in optimizely-sdk)."""

    ACTIVATE: Final = "ACTIVATE:experiment, user_id, attributes, variation, event"
    DECISION: Final = "DECISION:type, user_id, attributes, decision_info"
    OPTIMIZELY_CONFIG_UPDATE: Final = "OPTIMIZELY_CONFIG_UPDATE"
    TRACK: Final = "TRACK:event_key, user_id, attributes, event_tags, event"
    LOG_EVENT: Final = "LOG_EVENT:log_event"
    DELIVERY: Final = "DELIVERY:outcome"


class DecisionNotificationTypes:
    """The ``type`` argument of a DECISION notification: which API made the decision."""

    AB_TEST: Final = "ab-test"
    ALL_FEATURE_VARIABLES: Final = "all-feature-variables"
    FEATURE: Final = "feature"
    FEATURE_TEST: Final = "feature-test"
    FEATURE_VARIABLE: Final = "feature-variable"
    FLAG: Final = "flag"


_TYPES: Final = frozenset(
    value
    for name, value in vars(NotificationTypes).items()
    if not name.startswith("_") and isinstance(value, str)
)

Listener = Callable[..., object]


def _known(notification_type: object) -> bool:
    # A membership test against a set raises for an unhashable value; a public call must not.
    return isinstance(notification_type, str) and notification_type in _TYPES


class NotificationCenter:
    """Holds listeners per notification type and calls them.

    Adding and removing are thread-safe; sending reads an immutable snapshot,
    so the hot path takes no lock.
    """

    def __init__(self, logger: object | None = None) -> None:
        self._logger = get_logger(logger)
        self._lock = threading.Lock()
        self._next_id = 1
        self._listeners: dict[str, tuple[tuple[int, Listener], ...]] = dict.fromkeys(_TYPES, ())

    @property
    def notification_listeners(self) -> dict[str, list[tuple[int, Listener]]]:
        """A copy of the listeners per type, in optimizely-sdk's shape."""
        return {k: list(v) for k, v in self._listeners.items()}

    def listener_table(self) -> dict[str, tuple[tuple[int, Listener], ...]]:
        """The live listeners per type: read it, never change it (updated in place, never replaced)."""
        return self._listeners

    def has_listeners(self, notification_type: str) -> bool:
        """Whether any listener waits for ``notification_type`` (checked before building its arguments)."""
        try:
            return bool(self._listeners.get(notification_type))
        except TypeError:  # an unhashable type names no notification
            return False

    def add_notification_listener(self, notification_type: str, notification_callback: Listener) -> int:
        """Add a listener; returns its id, or -1 for an unknown type or a listener already added."""
        if not _known(notification_type):
            self._logger.error(
                f"Invalid notification_type: {notification_type} provided. Not adding listener."
            )
            return -1
        with self._lock:
            current = self._listeners[notification_type]
            if any(listener == notification_callback for _, listener in current):
                self._logger.error("Listener has already been added. Not adding it again.")
                return -1
            listener_id = self._next_id
            self._next_id += 1
            self._listeners[notification_type] = (*current, (listener_id, notification_callback))
        return listener_id

    def remove_notification_listener(self, notification_id: int) -> bool:
        with self._lock:
            for notification_type, current in self._listeners.items():
                kept = tuple(entry for entry in current if entry[0] != notification_id)
                if len(kept) != len(current):
                    self._listeners[notification_type] = kept
                    return True
        return False

    def clear_notification_listeners(self, notification_type: str) -> None:
        if not _known(notification_type):
            self._logger.error(
                f"Invalid notification_type: {notification_type} provided. Not removing any listener."
            )
            return
        with self._lock:
            self._listeners[notification_type] = ()

    def clear_all_notification_listeners(self) -> None:
        with self._lock:
            for notification_type in self._listeners:
                self._listeners[notification_type] = ()

    # optimizely-sdk's deprecated names
    clear_notifications = clear_notification_listeners
    clear_all_notifications = clear_all_notification_listeners

    def send_notifications(self, notification_type: str, *args: object) -> None:
        """Call every listener of ``notification_type`` with ``args``; a raising listener is logged."""
        listeners = self._listeners.get(notification_type) if _known(notification_type) else None
        if listeners is None:
            self._logger.error(
                f"Invalid notification_type: {notification_type} provided. Not triggering any notification."
            )
            return
        for _, callback in listeners:
            try:
                callback(*args)
            except Exception:  # a listener must never break the caller
                self._logger.exception(
                    f'Unknown problem when sending "{notification_type}" type notification.'
                )
