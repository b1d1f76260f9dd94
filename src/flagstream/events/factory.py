"""User events from decisions and ``track`` calls: the caller's share of event work.

This runs on the caller's thread, so it does only what must happen there:
copy the user's attributes that the Event API accepts (the caller may mutate
its dict afterwards), resolve ids against the config the decision used, fix
the uuid bits and the timestamp. JSON happens later, on the worker.

The rules follow optimizely-sdk 5.7 (checked differentially in
``tests/differential``): attributes must be strings, booleans or finite numbers
within ±2^53 and be in the datafile (or carry the ``$opt_`` prefix);
``$opt_bot_filtering`` is appended when the datafile sets ``botFiltering``;
revenue is an integer tag, value a finite number (or numeric string) tag.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from numbers import Integral
from typing import Any, Final

from flagstream import _version
from flagstream.config.entities import Experiment, Holdout, Variation
from flagstream.config.project_config import ProjectConfig
from flagstream.events.ids import new_uuid_bits, now_millis
from flagstream.events.log_event import EVENT_ENDPOINTS
from flagstream.events.user_event import (
    ConversionEvent,
    DecisionMetadata,
    EventContext,
    ImpressionEvent,
    VisitorAttribute,
)

__all__ = [
    "CLIENT_NAME",
    "conversion_event",
    "event_context",
    "impression_event",
    "numeric_value",
    "revenue_value",
    "visitor_attributes",
]

CLIENT_NAME: Final = "flagstream"
BOT_FILTERING_KEY: Final = "$opt_bot_filtering"
HOLDOUT_RULE_TYPE: Final = "holdout"
MAX_SAFE_NUMBER: Final = 2**53
CUSTOM: Final = "custom"

# Events are made on the caller's thread for every decision and track call;
# tuple.__new__ skips the NamedTuple constructor's argument handling.
_new = tuple.__new__


def event_context(config: ProjectConfig, endpoint: str | None = None) -> EventContext:
    """The context every event made from ``config`` shares; ``endpoint`` overrides the region's URL."""
    region = str(config.region or "US").upper()
    url = endpoint or EVENT_ENDPOINTS.get(region, EVENT_ENDPOINTS["US"])
    return EventContext(
        account_id=config.account_id,
        project_id=config.project_id,
        revision=config.revision,
        client_name=CLIENT_NAME,
        client_version=_version.__version__,
        anonymize_ip=config.anonymize_ip,
        bot_filtering=config.bot_filtering,
        region=region,
        endpoint=url,
    )


def _sendable(value: object) -> bool:
    """The general check, for subclasses of the plain types (enums, numpy scalars)."""
    if isinstance(value, (str, bool)):
        return True
    if isinstance(value, float):
        return math.isfinite(value) and abs(value) <= MAX_SAFE_NUMBER
    if isinstance(value, Integral):
        return abs(int(value)) <= MAX_SAFE_NUMBER
    return False


_BOT_FILTERING: Final[dict[bool, VisitorAttribute]] = {
    flag: (BOT_FILTERING_KEY, BOT_FILTERING_KEY, flag, CUSTOM) for flag in (True, False)
}


def visitor_attributes(
    config: ProjectConfig, attributes: Mapping[Any, Any] | None
) -> tuple[VisitorAttribute, ...]:
    """The ``attributes`` entries the Event API receives for a user with ``attributes``.

    The keys are the caller's and may be of any type (only strings are sent).
    """
    out: list[VisitorAttribute] = []
    if attributes:
        key_map = config.attribute_key_map
        # Iterated as a dict (compiled code walks a dict directly, a Mapping through generic calls).
        entries: dict[Any, Any] = attributes if type(attributes) is dict else dict(attributes)
        for key, value in entries.items():
            kind = type(value)
            # The plain types are checked inline: this runs for every attribute of every event.
            if kind is str or kind is bool:
                pass
            elif kind is int or kind is float:
                if not -MAX_SAFE_NUMBER <= value <= MAX_SAFE_NUMBER:  # False for NaN too
                    continue
            elif not _sendable(value):
                continue
            attribute = key_map.get(key)
            if attribute is not None:
                entity_id = attribute.id
            elif type(key) is str and key.startswith("$opt_"):
                entity_id = key
            else:
                continue
            if kind is str or kind is bool or kind is int:
                out.append(_shared_attribute(entity_id, key, value, kind))
            else:
                out.append((entity_id, key, value, CUSTOM))
    bot_filtering = config.bot_filtering
    if bot_filtering is True or bot_filtering is False:
        out.append(_BOT_FILTERING[bot_filtering])
    return tuple(out)


# One object per distinct attribute and per distinct decision, shared by every event
# that carries it: a queued event then keeps 3 GC-tracked objects alive instead of 4 plus
# one per attribute, and the collector's passes come less often and cost less
# (bench/call_phases.py). Bounded like the payload writer's caches; dict reads and
# writes are atomic under the GIL, so no lock is needed.
_CACHE_LIMIT: Final = 4096
_attributes: dict[tuple[str, str, object, type], VisitorAttribute] = {}
_metadata: dict[tuple[str, str, str, str, bool], DecisionMetadata] = {}


def _shared_attribute(entity_id: str, key: str, value: Any, kind: type) -> VisitorAttribute:
    # The value's type is part of the key: True == 1 (and they hash alike), but they are
    # sent as true and 1. Floats are never shared (0.0 == -0.0 too).
    cache_key = (entity_id, key, value, kind)
    shared = _attributes.get(cache_key)
    if shared is None:
        # Declared, not inferred: mypyc would keep a fixed-length tuple unboxed and box it
        # once for the cache and again for the caller, two objects instead of one shared.
        made: VisitorAttribute = (entity_id, key, value, CUSTOM)
        if len(_attributes) >= _CACHE_LIMIT:
            _attributes.clear()
        _attributes[cache_key] = made
        return made
    return shared


def _shared_metadata(
    flag_key: str, rule_key: str, rule_type: str, variation_key: str, enabled: bool
) -> DecisionMetadata:
    cache_key = (flag_key, rule_key, rule_type, variation_key, enabled)
    shared = _metadata.get(cache_key)
    if shared is None or type(shared.enabled) is not type(enabled):
        shared = _new(DecisionMetadata, cache_key)
        if len(_metadata) >= _CACHE_LIMIT:
            _metadata.clear()
        _metadata[cache_key] = shared
    return shared


def _numeric_id(value: str) -> str | None:
    # The Event API takes decimal variation ids only; anything else is sent as null.
    return value if value and value.isascii() and value.isdigit() else None


def impression_event(
    config: ProjectConfig,
    context: EventContext,
    experiment: Experiment | Holdout | None,
    variation: Variation | None,
    flag_key: str,
    rule_key: str,
    rule_type: str,
    enabled: bool,
    user_id: str,
    attributes: Mapping[str, Any] | None,
) -> ImpressionEvent:
    """The impression for one decision (``activate``, ``decide``, ``is_feature_enabled``)."""
    experiment_id = experiment.id if experiment is not None else ""
    resolved: Variation | None = None
    if variation is not None and variation.id:
        if flag_key and rule_type != HOLDOUT_RULE_TYPE:
            resolved = config.flag_variation_id_map.get(flag_key, {}).get(variation.id)
        elif experiment is not None and experiment_id:
            resolved = experiment.variations_by_id.get(variation.id)
    layer_id = experiment.layer_id if isinstance(experiment, Experiment) else ""
    campaign_id = layer_id if layer_id else experiment_id
    return _new(
        ImpressionEvent,
        (
            context,
            user_id,
            visitor_attributes(config, attributes),
            new_uuid_bits(128),
            now_millis(),
            campaign_id,
            experiment_id,
            _numeric_id(resolved.id) if resolved is not None else None,
            _shared_metadata(
                flag_key, rule_key, rule_type, resolved.key if resolved is not None else "", enabled
            ),
        ),
    )


def revenue_value(tags: object) -> int | None:
    """The ``revenue`` tag when it is an integer (booleans are not)."""
    if not isinstance(tags, dict):
        return None
    raw = tags.get("revenue")
    if isinstance(raw, bool) or not isinstance(raw, Integral):
        return None
    return int(raw)


def numeric_value(tags: object) -> float | None:
    """The ``value`` tag as a finite float (numbers and numeric strings; not booleans)."""
    if not isinstance(tags, dict) or "value" not in tags:
        return None
    raw = tags["value"]
    if isinstance(raw, bool) or not isinstance(raw, (Integral, float, str)):
        return None
    try:
        number = float(raw)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


# optimizely-sdk builds its payload through a JSON round trip that drops these
# keys wherever their value is null, at any depth, including inside event tags.
_DROPPED_WHEN_NULL: Final = frozenset({"revenue", "value", "tags", "decisions"})


def _json_key(key: object) -> object:
    """A dict key as JSON writes it (``7`` -> ``"7"``, ``True`` -> ``"true"``)."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    return key  # not JSON-serializable; the worker's serializer writes str(key)


def _copy_tags(tags: object) -> object:
    """A deep copy of the user's tags as the Event API payload carries them: the JSON
    round trip's key and array conversions, and optimizely-sdk's null-dropping."""
    if isinstance(tags, dict):
        return {
            _json_key(k): _copy_tags(v)
            for k, v in tags.items()
            if v is not None or k not in _DROPPED_WHEN_NULL
        }
    if isinstance(tags, (list, tuple)):
        return [_copy_tags(v) for v in tags]
    return tags


def conversion_event(
    config: ProjectConfig,
    context: EventContext,
    event_id: str,
    event_key: str,
    user_id: str,
    attributes: Mapping[str, Any] | None,
    tags: object,
) -> ConversionEvent:
    """The conversion for one ``track`` call; ``event_key`` must be in ``config``."""
    return _new(
        ConversionEvent,
        (
            context,
            user_id,
            visitor_attributes(config, attributes),
            new_uuid_bits(128),
            now_millis(),
            event_id,
            event_key,
            _copy_tags(tags) if tags is not None else None,
            revenue_value(tags) if tags else None,
            numeric_value(tags) if tags else None,
        ),
    )
