"""Event API payloads: user events in, one ``LogEvent`` out.

``build_log_event`` runs on the delivery worker (or on the caller's thread
with the forwarding processor, as optimizely-sdk does). The field layout and
values follow what optimizely-sdk 5.7 sends; ``tests/differential`` checks it.

Two builders make the same payload. ``params_of`` builds the nested dicts and
is the readable definition. ``build_log_event`` writes the JSON bytes directly
from fragments: the decision part of an impression and each attribute repeat
across events and are serialized once, and the uuids of a batch are formatted
together, so the worker spends less than half the time per event that
serializing the dicts takes (``bench/payload_writer.py``). ``tests/events`` checks that the
bytes parse to exactly what ``params_of`` builds, types included.
"""

from __future__ import annotations

import binascii
import operator
from collections.abc import Callable, Sequence
from typing import Any, Final

from flagstream import _json
from flagstream.events.ids import format_uuid, uuid_json
from flagstream.events.log_event import JSON_HEADERS, LogEvent
from flagstream.events.user_event import (
    EventContext,
    ImpressionEvent,
    UserEvent,
    VisitorAttribute,
)

__all__ = [
    "ACTIVATE_EVENT_KEY",
    "SLICE_VISITORS",
    "build_log_event",
    "estimated_size",
    "log_event_from_visitors",
    "params_of",
    "visitor_bytes",
    "visitor_of",
]

ACTIVATE_EVENT_KEY: Final = "campaign_activated"
_ACTIVATE_KEY = ACTIVATE_EVENT_KEY.encode()

# Fixed JSON overhead of one visitor (keys, brackets, uuid, timestamp) and of one
# attribute; measured on real payloads and rounded up so the estimate errs high.
_VISITOR_OVERHEAD: Final = 260
_ATTRIBUTE_OVERHEAD: Final = 64
_DECISION_OVERHEAD: Final = 150


def _attributes(attributes: tuple[VisitorAttribute, ...]) -> list[dict[str, Any]]:
    return [
        {"entity_id": entity_id, "key": key, "type": kind, "value": value}
        for entity_id, key, value, kind in attributes
    ]


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


#: Visitors written between two calls of ``build_log_event``'s ``pause``: well under
#: 100 µs of work on the 2-core benchmark machine (``bench/stall_probe.py``).
SLICE_VISITORS: Final = 32


def build_log_event(events: Sequence[UserEvent], pause: Callable[[], object] | None = None) -> LogEvent:
    """One Event API request for ``events``, which must share one :class:`EventContext`.

    ``pause``, if given, is called between slices of :data:`SLICE_VISITORS`
    visitors: the delivery worker passes one that lets the application's
    threads take the interpreter lock, so a 500-event body is never written in
    one long stretch that makes them wait. The bytes are the same either way.

    Raises ``ValueError`` when ``events`` is empty or mixes contexts: the batch
    processor groups by context before calling this.
    """
    context = _check_context(events)
    if pause is None or len(events) <= SLICE_VISITORS:
        return log_event_from_visitors(context, list(map(_visitor_bytes, events, _uuid_texts(events))))
    # Each slice is joined as it is written (while its bytes are still in the cache), so
    # the last step copies a few dozen pieces, not hundreds: joining the pieces with ","
    # gives exactly the bytes of joining every visitor with ",".
    pieces: list[bytes] = []
    for start in range(0, len(events), SLICE_VISITORS):
        part = events[start : start + SLICE_VISITORS]
        pieces.append(b",".join(list(map(_visitor_bytes, part, _uuid_texts(part)))))
        pause()
    return log_event_from_visitors(context, pieces)


def log_event_from_visitors(context: EventContext, visitors: Sequence[bytes]) -> LogEvent:
    """One request from visitors already written by :func:`visitor_bytes` (the spool's path).

    The body is the same bytes :func:`build_log_event` writes for the same events.
    """
    # One join into the final buffer: joining the visitors first and then the three parts
    # wrote every byte twice, into two fresh buffers of the body's size (for a 300 KB body,
    # 150 page faults where the application's threads wait for the lock; bench/stall_probe.py).
    count = len(visitors)
    parts = [b","] * (2 * count + 1)
    parts[0] = _header(context)
    parts[1::2] = visitors
    parts[-1] = b"]}" if count else parts[0] + b"]}"
    return LogEvent(context.endpoint, None, "POST", dict(JSON_HEADERS), b"".join(parts))


def visitor_bytes(event: UserEvent) -> bytes:
    """One event's ``visitors[]`` entry as JSON bytes, exactly as it appears in a request body.

    The durable spool writes these bytes on the caller's thread; a batch of them
    becomes a request with :func:`log_event_from_visitors`.
    """
    uuid = event[3]
    return _visitor_bytes(event, uuid_json(uuid) if type(uuid) is int else _json.dumps(format_uuid(uuid)))


# -- the byte writer ------------------------------------------------------------------
#
# Measured per event on the 2-core benchmark machine (BENCHMARKS.md): the uuids of a
# batch formatted together instead of one by one (0.5 against 1.6 us), one cached
# fragment per attribute name and value, and each visitor written by a single bytes
# %-format from the event's fields.

_CACHE_LIMIT: Final = 4096
_headers: dict[EventContext, bytes] = {}
_decisions: dict[tuple[Any, ...], bytes] = {}
_attribute_fragments: dict[int, Any] = {}
_conversions: dict[tuple[str, str], tuple[bytes, bytes]] = {}


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


def _decision(event: ImpressionEvent) -> bytes:
    """The start of an impression's visitor, up to its event's ``entity_id`` value."""
    key = (event.campaign_id, event.experiment_id, event.variation_id, event.metadata)
    cached = _decisions.get(key)
    if cached is None:
        cached = (
            b'{"snapshots":[{"decisions":'
            + _json.dumps(_decisions_of(event))
            + b',"events":[{"entity_id":'
            + _json.dumps(event.campaign_id)
        )
        _remember(_decisions, key, cached)
    return cached


def _attribute_bytes(attribute: VisitorAttribute) -> bytes:
    # Keyed by identity: the event factory shares one object per distinct attribute, so
    # a hit costs an integer hash, not hashing and comparing the attribute's fields. The
    # entry keeps its attribute alive, so no other object can reuse the id while it is
    # cached. Floats are not cached (never shared, and 0.0 == -0.0).
    cached = _attribute_fragments.get(id(attribute))
    if cached is not None and cached[0] is attribute:
        hit: bytes = cached[1]
        return hit
    entity_id, name, value, kind = attribute
    fragment = b'{"entity_id":%s,"key":%s,"type":%s,"value":%s}' % (
        _json.dumps(entity_id),
        _json.dumps(name),
        _json.dumps(kind),
        _json.dumps(value),
    )
    if type(value) is not float:
        _remember(_attribute_fragments, id(attribute), (attribute, fragment))
    return fragment


# A version-4 uuid is 32 hex digits with dashes after 8, 12, 16 and 20 of them; the
# version digit is always 4 and the variant digit one of 8, 9, a, b.
_UUID_TEMPLATE = b'"00000000-0000-4000-8000-000000000000"'
_UUID_DIGITS = tuple(
    (src, 1 + src + (src >= 8) + (src >= 12) + (src >= 16) + (src >= 20)) for src in range(32) if src != 12
)
_UUID_VARIANT = bytes.maketrans(b"0123456789abcdef", b"89ab89ab89ab89ab")
_uuid_of = operator.itemgetter(3)


def _uuid_texts(events: Sequence[UserEvent]) -> list[bytes]:
    """The JSON text of each event's uuid (quoted), formatted for the whole batch at once.

    All the random bits of a batch are hex-encoded in one call, and each of the 31
    random digit positions is copied into a template by one strided slice
    assignment: a few C loops per batch instead of a dozen Python operations per
    event. The digits are exactly those of :func:`~flagstream.events.ids.format_uuid`.
    """
    try:
        raw = b"".join([bits.to_bytes(16, "big") for bits in map(_uuid_of, events)])
    except (AttributeError, OverflowError, TypeError):  # a uuid given as text, or not 128 bits
        return [_json.dumps(format_uuid(uuid)) for uuid in map(_uuid_of, events)]
    digits = binascii.hexlify(raw)
    width = len(_UUID_TEMPLATE)
    out = bytearray(_UUID_TEMPLATE * len(events))
    for src, dst in _UUID_DIGITS:
        column = digits[src::32]
        out[dst::width] = column.translate(_UUID_VARIANT) if src == 16 else column
    text = bytes(out)
    return [text[i : i + width] for i in range(0, len(text), width)]


def _visitor_bytes(event: UserEvent, uuid: bytes) -> bytes:
    """One ``visitors[]`` entry as JSON bytes, with its uuid already written as JSON."""
    attributes = b",".join([_attribute_bytes(a) for a in event[2]])
    if type(event) is ImpressionEvent:
        return b'%s,"uuid":%s,"key":"%s","timestamp":%d}]}],"attributes":[%s],"visitor_id":%s}' % (
            _decision(event),
            uuid,
            _ACTIVATE_KEY,
            event[4],
            attributes,
            _json.dumps(event[1]),  # _json, not orjson: a lone surrogate must not fail the batch
        )
    # Unpacked untyped: a field of the wrong type still serializes (and the Event API judges it).
    conversion: tuple[Any, ...] = event
    _, user_id, _, _, timestamp, event_id, event_key, tags, revenue, value = conversion
    metrics = b""
    if revenue is not None:
        metrics += b',"revenue":' + _json.dumps(revenue)
    if value is not None:
        metrics += b',"value":' + _json.dumps(value)
    if tags is not None:
        metrics += b',"tags":' + _json.dumps(tags)
    head, middle = _conversion(event_id, event_key)
    return b'%s%s%s%d%s}]}],"attributes":[%s],"visitor_id":%s}' % (
        head,
        uuid,
        middle,
        timestamp,
        metrics,
        attributes,
        _json.dumps(user_id),
    )


def _conversion(event_id: Any, event_key: Any) -> tuple[bytes, bytes]:
    """A conversion's visitor up to its uuid, and from the uuid to its timestamp."""
    key = (event_id, event_key) if type(event_id) is str and type(event_key) is str else None
    cached = _conversions.get(key) if key is not None else None
    if cached is None:
        cached = (
            b'{"snapshots":[{"events":[{"entity_id":' + _json.dumps(event_id) + b',"uuid":',
            b',"key":' + _json.dumps(event_key) + b',"timestamp":',
        )
        if key is not None:
            _remember(_conversions, key, cached)
    return cached


def estimated_size(event: UserEvent) -> int:
    """A cheap upper estimate of the bytes ``event`` adds to a request body.

    Used for the processor's byte bound at enqueue time, before any JSON
    exists; the worker measures the real body before sending. It runs on the
    caller's thread, so it only sums string lengths: a string with any
    non-ASCII character counts 4 bytes per character, the most UTF-8 takes.
    Characters JSON escapes (quotes, backslashes, control characters) count
    once, and datafile ids are inside the fixed overheads.
    """
    size = _VISITOR_OVERHEAD + _text_size(event[1])
    for attribute in event[2]:
        value = attribute[2]
        size += (
            _ATTRIBUTE_OVERHEAD + _text_size(attribute[1]) + (_text_size(value) if type(value) is str else 24)
        )
    if type(event) is ImpressionEvent:
        metadata = event[8]
        return (
            size
            + _DECISION_OVERHEAD
            + _text_size(metadata[0])
            + _text_size(metadata[1])
            + _text_size(metadata[2])
            + _text_size(metadata[3])
        )
    size += _text_size(event[6])
    tags = event[7]
    if tags:
        size += _text_size(str(tags))
    return size


_isascii: Final = str.isascii  # called as a function: no method lookup per string


def _text_size(text: str) -> int:
    """The most bytes ``text`` takes in UTF-8: its length when ASCII, else 4 bytes a character."""
    return len(text) if _isascii(text) else 4 * len(text)
