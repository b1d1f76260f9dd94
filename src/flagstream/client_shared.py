"""What both client APIs share: typed variable values and sending an impression.

``_SharedClient`` sits between the wiring (:mod:`flagstream.client_base`:
configuration, event processor, notifications) and the two APIs built on it,
the optimizely-sdk calls (:mod:`flagstream.client_experiments`,
:mod:`flagstream.client_features`) and ``decide`` (:mod:`flagstream.client_decide`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flagstream import _json
from flagstream.client_base import _ClientBase
from flagstream.config.entities import Experiment, Variable, VariableType, Variation
from flagstream.config.project_config import ProjectConfig
from flagstream.events.factory import impression_event
from flagstream.notifications import NotificationTypes
from flagstream.user_context import DecideClient

__all__ = ["_SharedClient"]


def _is_key(value: object) -> bool:
    return isinstance(value, str) and bool(value)


if TYPE_CHECKING:
    # Every call makes user contexts with the client as their DecideClient; the final class
    # (flagstream.Optimizely) has those calls from client_decide and client_experiments.
    _UserContextCalls = DecideClient
else:
    _UserContextCalls = object


class _SharedClient(_ClientBase, _UserContextCalls):
    """Variable values and impressions, for the legacy calls and ``decide`` alike."""

    # -- variables ---------------------------------------------------------------------------

    def _variables_of(
        self, config: ProjectConfig, variables: Mapping[str, Variable], variation: Variation | None
    ) -> dict[str, Any]:
        """The typed values of ``variables`` for ``variation`` (their defaults for ``None``).

        Values are cast once per config and variation and then copied; json
        values are parsed again on every call so callers never share a dict.
        Without json variables every value is immutable and a shallow copy of
        the cached dict is the whole cost.
        """
        cache_key = (id(variables), variation.id if variation is not None else None)
        cached = self._variable_cache.get(cache_key)
        if cached is None or cached[0] is not config:
            if self._variable_cache_config is not config:
                self._variable_cache.clear()
                self._variable_cache_config = config
            cast: list[tuple[str, Any, str | None]] = []
            for key, variable in variables.items():
                raw: str | None = variable.default_value
                if variation is not None:
                    raw = config.get_variable_value_for_variation(variable, variation)
                value = self._typecast(raw, variable.type)
                is_json = variable.type == VariableType.JSON and value is not None
                cast.append((key, value, raw if is_json else None))
            plain = None if any(raw is not None for _, _, raw in cast) else {k: v for k, v, _ in cast}
            cached = (config, tuple(cast), plain)
            self._variable_cache[cache_key] = cached
        if cached[2] is not None:
            return cached[2].copy()
        return {key: value if raw is None else _parse_json(raw) for key, value, raw in cached[1]}

    def _typecast(self, raw: str | None, variable_type: str) -> Any:
        cast: Callable[[Any], Any] | None = _CASTS.get(variable_type)
        if cast is None:
            return raw
        try:
            return cast(raw)
        except Exception:
            self._logger.error("Unable to cast value. Returning None.")
            return None

    # -- impressions -------------------------------------------------------------------------

    def _send_impression(
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
        user_event = impression_event(
            config,
            self._events.context(config),
            experiment,
            variation,
            flag_key,
            rule_key,
            rule_type,
            enabled,
            user_id,
            attributes,
        )
        self._process(user_event)
        if self._notifications.has_listeners(NotificationTypes.ACTIVATE):
            self._notifications.send_notifications(
                NotificationTypes.ACTIVATE,
                experiment if experiment is not None else _DEFAULT_EXPERIMENT,
                user_id,
                attributes,
                variation,
                self._log_event_dict(user_event),
            )


def _json_cast(raw: Any) -> Any:
    # The stdlib parser, as optimizely-sdk parses json variables (it accepts NaN and big ints).
    return json.loads(raw)


def _parse_json(raw: str) -> Any:
    """A fresh parse of a json variable already known to parse, equal to ``json.loads``."""
    return _json.loads_exact(raw)


_CASTS: dict[str, Callable[[Any], Any]] = {
    VariableType.BOOLEAN: lambda raw: raw == "true",
    VariableType.INTEGER: int,
    VariableType.DOUBLE: float,
    VariableType.JSON: _json_cast,
}

_DEFAULT_EXPERIMENT = Experiment(
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
