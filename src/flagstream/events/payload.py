"""Event API payloads: user events in, one ``LogEvent`` out.

``build_log_event`` runs on the delivery worker (or on the caller's thread
with the forwarding processor, as optimizely-sdk does). The field layout and
values follow what optimizely-sdk 5.7 sends; ``tests/differential`` checks it.

Two builders make the same payload. ``params_of`` builds the nested dicts and
is the readable definition. ``build_log_event`` writes the JSON bytes directly
from fragments: the decision part of an impression and the name part of an
attribute repeat across events and are serialized once, so the worker spends
about a third of the time per event (BENCHMARKS.md). ``tests/events`` checks
that the bytes parse to exactly what ``params_of`` builds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from flagstream import _json
from flagstream.events.ids import format_uuid
from flagstream.events.log_event import JSON_HEADERS, LogEvent
from flagstream.events.user_event import (
    ConversionEvent,
    EventContext,
    ImpressionEvent,
    UserEvent,
    VisitorAttribute,
)

__all__ = ["ACTIVATE_EVENT_KEY", "build_log_event", "estimated_size", "params_of", "visitor_of"]

ACTIVATE_EVENT_KEY = "campaign_activated"

# Fixed JSON overhead of one visitor (keys, brackets, uuid, timestamp) and of one
# attribute; measured on real payloads and rounded up so the estimate errs high.
_VISITOR_OVERHEAD = 260
_ATTRIBUTE_OVERHEAD = 64
_DECISION_OVERHEAD = 150


def _attributes(attributes: tuple[VisitorAttribute, ...]) -> list[dict[str, Any]]:
    return [{"entity_id": a.entity_id, "key": a.key, "type": a.type, "value": a.value} for a in attributes]


def _context_of(context: EventContext) -> dict[str, Any]:
    """The request-level fields of the payload."""
    return {
        "account_id": context.account_id,
        "project_id": context.project_id,
        "revision": context.revision,
        "client_name": context.client_name,
        "client_version": context.client_version,
        "anonymize_ip": context.anonymize_ip,
        "enrich_decisions": True,
    }


def _decisions_of(event: ImpressionEvent) -> list[dict[str, Any]]:
    """The ``decisions`` of an impression's snapshot."""
    m = event.metadata
    return [
        {
            "campaign_id": event.campaign_id,
            "experiment_id": event.experiment_id,
            "variation_id": event.variation_id,
            "metadata": {
                "flag_key": m.flag_key,
                "rule_key": m.rule_key,
                "rule_type": m.rule_type,
                "variation_key": m.variation_key,
                "enabled": m.enabled,
            },
        }
    ]


def visitor_of(event: UserEvent) -> dict[str, Any]:
    """The ``visitors[]`` entry for one user event."""
    snapshot: dict[str, Any]
    if isinstance(event, ImpressionEvent):
        snapshot = {
            "decisions": _decisions_of(event),
            "events": [
                {
                    "entity_id": event.campaign_id,
                    "uuid": format_uuid(event.uuid),
                    "key": ACTIVATE_EVENT_KEY,
                    "timestamp": event.timestamp,
                }
            ],
        }
    else:
        snapshot_event: dict[str, Any] = {
            "entity_id": event.event_id,
            "uuid": format_uuid(event.uuid),
            "key": event.event_key,
            "timestamp": event.timestamp,
        }
        if event.revenue is not None:
            snapshot_event["revenue"] = event.revenue
        if event.value is not None:
            snapshot_event["value"] = event.value
        if event.tags is not None:
            snapshot_event["tags"] = event.tags
        snapshot = {"events": [snapshot_event]}
    return {
        "snapshots": [snapshot],
        "attributes": _attributes(event.attributes),
        "visitor_id": event.user_id,
    }


def _check_context(events: Sequence[UserEvent]) -> EventContext:
    if not events:
        raise ValueError("an Event API request needs at least one event")
    context = events[0].context
    for event in events:
        # Identity first: events of one client share one context object, and the
        # dataclass __eq__ compares nine fields in Python.
        if event.context is not context and event.context != context:
            raise ValueError("events of one request must share one EventContext")
    return context


def params_of(events: Sequence[UserEvent]) -> dict[str, Any]:
    """The payload of one request for ``events`` (sharing one context), as dicts."""
    context = _check_context(events)
    return {**_context_of(context), "visitors": [visitor_of(e) for e in events]}


def build_log_event(events: Sequence[UserEvent]) -> LogEvent:
    """One Event API request for ``events``, which must share one :class:`EventContext`.

    Raises ``ValueError`` when ``events`` is empty or mixes contexts: the batch
    processor groups by context before calling this.
    """
    context = _check_context(events)
    body = b"".join((_header(context), b",".join(map(_visitor_bytes, events)), b"]}"))
    return LogEvent(context.endpoint, None, "POST", dict(JSON_HEADERS), body)


# -- the byte writer ------------------------------------------------------------------

_dumps = orjson.dumps
_CACHE_LIMIT = 4096
_ACTIVATE_KEY = b'","key":"' + ACTIVATE_EVENT_KEY.encode() + b'","timestamp":'
_headers: dict[EventContext, bytes] = {}
_decisions: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}
_attribute_names: dict[tuple[str, str, str], bytes] = {}


def _remember(cache: dict[Any, Any], key: object, value: object) -> None:
    # Bounded: a datafile has few decisions and attribute names, but a cache must never grow
    # without limit on unexpected input. Dict item assignment is atomic under the GIL, so
    # the caches need no lock even with several workers.
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def _header(context: EventContext) -> bytes:
    header = _headers.get(context)
    if header is None:
        header = _json.dumps(_context_of(context))[:-1] + b',"visitors":['
        _remember(_headers, context, header)
    return header


def _decision(event: ImpressionEvent) -> tuple[bytes, bytes]:
    key = (event.campaign_id, event.experiment_id, event.variation_id, event.metadata)
    cached = _decisions.get(key)
    if cached is None:
        decisions = _json.dumps(_decisions_of(event))
        cached = (
            b'{"snapshots":[{"decisions":' + decisions + b',"events":[{"entity_id":',
            _dumps(event.campaign_id),
        )
        _remember(_decisions, key, cached)
    return cached


def _attribute_name(attribute: VisitorAttribute) -> bytes:
    key = (attribute[0], attribute[1], attribute[3])
    name = _attribute_names.get(key)
    if name is None:
        name = (
            b'{"entity_id":'
            + _dumps(attribute[0])
            + b',"key":'
            + _dumps(attribute[1])
            + b',"type":'
            + _dumps(attribute[3])
            + b',"value":'
        )
        _remember(_attribute_names, key, name)
    return name


def _attributes_bytes(attributes: tuple[VisitorAttribute, ...]) -> bytes:
    return b",".join([_attribute_name(a) + _json.dumps(a[2]) + b"}" for a in attributes])


def _visitor_bytes(event: UserEvent) -> bytes:
    """One ``visitors[]`` entry as JSON bytes.

    Each visitor is joined from a short tuple of fragments: collecting every
    fragment of a whole batch in one list first was measured three times slower.
    """
    if type(event) is ImpressionEvent:
        opening, campaign = _decision(event)
        return b"".join(
            (
                opening,
                campaign,
                b',"uuid":"',
                format_uuid(event.uuid).encode(),
                _ACTIVATE_KEY,
                str(event.timestamp).encode(),
                b'}]}],"attributes":[',
                _attributes_bytes(event.attributes),
                b'],"visitor_id":',
                _json.dumps(event.user_id),  # may be a str subclass, which orjson refuses
                b"}",
            )
        )
    conversion: ConversionEvent = event  # type: ignore[assignment]
    metrics = b""
    if conversion.revenue is not None:
        metrics += b',"revenue":' + _json.dumps(conversion.revenue)
    if conversion.value is not None:
        metrics += b',"value":' + _json.dumps(conversion.value)
    if conversion.tags is not None:
        metrics += b',"tags":' + _json.dumps(conversion.tags)
    return b"".join(
        (
            b'{"snapshots":[{"events":[{"entity_id":',
            _dumps(conversion.event_id),
            b',"uuid":"',
            format_uuid(conversion.uuid).encode(),
            b'","key":',
            _dumps(conversion.event_key),
            b',"timestamp":',
            str(conversion.timestamp).encode(),
            metrics,
            b'}]}],"attributes":[',
            _attributes_bytes(conversion.attributes),
            b'],"visitor_id":',
            _json.dumps(conversion.user_id),
            b"}",
        )
    )


def estimated_size(event: UserEvent) -> int:
    """A cheap upper estimate of the bytes ``event`` adds to a request body.

    Used for the processor's byte bound at enqueue time, before any JSON
    exists; the worker measures the real body before sending. It runs on the
    caller's thread, so it only sums string lengths it can get for free.
    """
    size = _VISITOR_OVERHEAD + len(event.user_id)
    for attribute in event.attributes:
        value = attribute[2]
        size += _ATTRIBUTE_OVERHEAD + len(attribute[1]) + (len(value) if type(value) is str else 24)
    if type(event) is ImpressionEvent:
        metadata = event.metadata
        return size + _DECISION_OVERHEAD + len(metadata[0]) + len(metadata[1]) + len(metadata[3])
    size += len(event.event_key)  # type: ignore[union-attr]
    tags = event.tags  # type: ignore[union-attr]
    if tags:
        size += len(str(tags))
    return size
