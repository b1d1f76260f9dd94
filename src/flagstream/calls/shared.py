"""What every call path shares: event contexts, handing events over, impressions, variable values.

:class:`Delivery` is built once per client. It keeps the ``EventContext`` of
the current config (so the events of one config share one object), hands user
events to the client's event processor (never raising into the caller), and
sends impressions and conversions with their ACTIVATE and TRACK notifications. :class:`VariableValues`
casts a flag's variables once per config and variation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from flagstream.calls.result import json_values
from flagstream.config.entities import Experiment, Variable, VariableType, Variation
from flagstream.config.project_config import ProjectConfig
from flagstream.events.factory import conversion_event, event_context, impression_event
from flagstream.events.payload import build_log_event
from flagstream.events.user_event import EventContext, UserEvent
from flagstream.notifications import NotificationCenter, NotificationTypes

__all__ = [
    "DEFAULT_EXPERIMENT",
    "INVALID_INPUT",
    "INVALID_OPTIMIZELY",
    "INVALID_PROJECT_CONFIG",
    "Delivery",
    "Listeners",
    "VariableValues",
    "log_event_dict",
]

# optimizely-sdk's texts (``client_base.ErrorMessages`` names them as optimizely-sdk does).
INVALID_INPUT: Final = 'Provided "{}" is in an invalid format.'
INVALID_OPTIMIZELY: Final = 'Optimizely instance is not valid. Failing "{}".'
INVALID_PROJECT_CONFIG: Final = 'Invalid config. Optimizely instance is not valid. Failing "{}".'

_ACTIVATE: Final = NotificationTypes.ACTIVATE
_TRACK: Final = NotificationTypes.TRACK


class Listeners:
    """Whether anyone listens for a notification type, asked before its arguments are built.

    flagstream's ``NotificationCenter`` is read through its live table. A center
    of another kind is asked its ``has_listeners``; one without it (optimizely-sdk's
    own ``NotificationCenter``) is always sent the notification.
    """

    def __init__(self, center: Any) -> None:
        self.center = center
        self.table: dict[str, Any] | None = None  # a dict, so that compiled code reads it directly
        self.ask: Any = None
        if type(center) is NotificationCenter:
            self.table = center.listener_table()
        else:
            ask = getattr(center, "has_listeners", None)
            self.ask = ask if callable(ask) else None

    def wanted(self, notification_type: str) -> bool:
        """Whether a ``notification_type`` notification would reach anyone (``True`` when unknown)."""
        table = self.table
        if table is not None:
            return bool(table.get(notification_type))
        ask = self.ask
        if ask is None:
            return True
        try:
            return bool(ask(notification_type))
        except Exception:  # a broken user center: send, and let its send_notifications say what is wrong
            return True


class Delivery:
    """Events from the caller's thread to the client's event processor."""

    def __init__(
        self, client: Any, logger: Any, notifications: Any, listeners: Listeners, endpoint: str | None
    ) -> None:
        self.client = client  # read for ``event_processor`` on each event: it is a public attribute
        self.logger = logger
        self.notifications = notifications
        self.listeners = listeners
        self.endpoint = endpoint
        self.cached_config: ProjectConfig | None = None
        self.cached_context: EventContext | None = None

    def context(self, config: ProjectConfig) -> EventContext:
        """The ``EventContext`` of ``config``, made once per config."""
        context = self.cached_context
        if context is not None and self.cached_config is config:
            return context
        context = event_context(config, self.endpoint)
        self.cached_config = config
        self.cached_context = context
        return context

    def process(self, user_event: UserEvent) -> None:
        """Hand ``user_event`` to the event processor; a broken user processor is logged, not raised."""
        try:
            self.client.event_processor.process(user_event)  # a user may wrap process() on the instance
        except Exception:
            self.logger.exception("Event processor failed to accept an event.")

    def impression(
        self,
        config: ProjectConfig,
        experiment: Any,
        variation: Any,
        flag_key: str,
        rule_key: str,
        rule_type: str,
        enabled: bool,
        user_id: str,
        attributes: Mapping[str, Any] | None,
    ) -> None:
        """Send an impression, then the ACTIVATE notification when anyone listens."""
        user_event = impression_event(
            config,
            self.context(config),
            experiment,
            variation,
            flag_key,
            rule_key,
            rule_type,
            enabled,
            user_id,
            attributes,
        )
        self.process(user_event)
        if self.listeners.wanted(_ACTIVATE):
            self.notifications.send_notifications(
                _ACTIVATE,
                experiment if experiment is not None else DEFAULT_EXPERIMENT,
                user_id,
                attributes,
                variation,
                log_event_dict(user_event),
            )

    def conversion(
        self,
        config: ProjectConfig,
        event_id: str,
        event_key: str,
        user_id: str,
        attributes: Mapping[str, Any] | None,
        event_tags: object,
    ) -> None:
        """Send a conversion, then the TRACK notification when anyone listens.

        ``attributes`` and ``event_tags`` are as the caller passed them (a falsy
        non-dict is accepted as none), so they are not typed as dicts here.
        """
        user_event = conversion_event(
            config, self.context(config), event_id, event_key, user_id, attributes, event_tags
        )
        self.process(user_event)
        if self.listeners.wanted(_TRACK):
            self.notifications.send_notifications(
                _TRACK, event_key, user_id, attributes, event_tags, log_event_dict(user_event)
            )


def log_event_dict(user_event: UserEvent) -> dict[str, Any]:
    """The LogEvent of one user event as optimizely-sdk's notifications hand it: a dict."""
    log_event = build_log_event([user_event])
    return {
        "url": log_event.url,
        "http_verb": log_event.http_verb,
        "params": log_event.params,
        "headers": log_event.headers,
    }


_CachedValues = tuple[ProjectConfig, tuple[tuple[str, Any, str | None], ...], dict[str, Any] | None]


class VariableValues:
    """The typed values of a flag's variables, cast once per config and variation."""

    def __init__(self, logger: Any) -> None:
        self.logger = logger
        self.cache: dict[tuple[int, str | None], _CachedValues] = {}
        self.cache_config: ProjectConfig | None = None

    def of(
        self, config: ProjectConfig, variables: Mapping[str, Variable], variation: Variation | None
    ) -> dict[str, Any]:
        """The typed values of ``variables`` for ``variation`` (their defaults for ``None``).

        Values are cast once per config and variation and then copied; json
        values are parsed again on every call so callers never share a dict.
        Without json variables every value is immutable and a shallow copy of
        the cached dict is the whole cost.
        """
        cached = self.cached(config, variables, variation)
        values = cached[2]
        if values is not None:
            return values.copy()
        return json_values(cached[1])

    def cached(
        self, config: ProjectConfig, variables: Mapping[str, Variable], variation: Variation | None
    ) -> _CachedValues:
        """``(config, (key, typed value, json text or None) per variable, the values when none is json)``."""
        cache_key = (id(variables), variation.id if variation is not None else None)
        cached = self.cache.get(cache_key)
        if cached is None or cached[0] is not config:
            if self.cache_config is not config:
                self.cache.clear()
                self.cache_config = config
            cast: list[tuple[str, Any, str | None]] = []
            for key, variable in variables.items():
                raw: str | None = variable.default_value
                if variation is not None:
                    raw = config.get_variable_value_for_variation(variable, variation)
                value = self.typecast(raw, variable.type)
                is_json = variable.type == VariableType.JSON and value is not None
                cast.append((key, value, raw if is_json else None))
            plain = None if any(raw is not None for _, _, raw in cast) else {k: v for k, v, _ in cast}
            cached = (config, tuple(cast), plain)
            self.cache[cache_key] = cached
        return cached

    def typecast(self, raw: str | None, variable_type: str) -> Any:
        """``raw`` as its variable type says, as optimizely-sdk casts it; ``None`` (logged) when it cannot."""
        cast = _CASTS.get(variable_type)
        if cast is None:
            return raw
        try:
            return cast(raw)
        except Exception:
            self.logger.error("Unable to cast value. Returning None.")
            return None


def _boolean(raw: Any) -> Any:
    return raw == "true"


def _json_cast(raw: Any) -> Any:
    # The stdlib parser, as optimizely-sdk parses json variables (it accepts NaN and big ints).
    return json.loads(raw)


_CASTS: Final[dict[str, Callable[[Any], Any]]] = {
    VariableType.BOOLEAN: _boolean,
    VariableType.INTEGER: int,
    VariableType.DOUBLE: float,
    VariableType.JSON: _json_cast,
}

DEFAULT_EXPERIMENT: Final = Experiment(
    id="",
    key="",
    status="",
    layer_id="",
    audience_ids=(),
    audience_conditions=(),
    variations=(),
    variations_by_key={},
    variations_by_id={},
    forced_variations={},
    traffic_allocation=(),
)
