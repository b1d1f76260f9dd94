"""User events: what a decision or a ``track`` call records, before any JSON exists.

These are the values that travel from the caller's thread to the delivery
worker. They are frozen and hold only immutable data copied at creation (the
caller may mutate its attribute and tag dicts afterwards), so the batch
processor can group them by :class:`EventContext` and serialize them late, on
its worker, with :func:`flagstream.events.payload.build_log_event`.

``uuid`` and ``timestamp`` are fixed at creation: delivery is at-least-once and
the Event API de-duplicates on them. ``uuid`` is either the UUID text or the
128 random bits it is formatted from on the worker (see ``flagstream.events.ids``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "ConversionEvent",
    "DecisionMetadata",
    "EventContext",
    "ImpressionEvent",
    "UserEvent",
    "VisitorAttribute",
    "visitor_attribute",
]

AttributeValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class EventContext:
    """What every event of one Event API request shares; a change of any field splits a batch."""

    account_id: Any  # the datafile's values, as ProjectConfig holds them (None when missing)
    project_id: Any
    revision: Any
    client_name: str
    client_version: str
    anonymize_ip: bool
    bot_filtering: bool | None
    region: str
    endpoint: str


VisitorAttribute = tuple[Any, ...]
"""One entry of a visitor's ``attributes`` in the payload: ``(entity_id, key, value, type)``,
three strings and a :data:`AttributeValue`.

A plain tuple, not a named one: CPython's collector stops tracking an exact tuple
that holds only strings and numbers, and then the tuple of them an event carries,
so a queued event is one tracked object instead of two and the collector's passes
over a backlog take half as long (``bench/stall_probe.py``). Typed with ``...``
because mypyc would keep a fixed-length tuple type unboxed and box a new tuple at
every boundary, so attributes would no longer be shared objects.
"""


def visitor_attribute(
    entity_id: str, key: str, value: AttributeValue, type: str = "custom"
) -> VisitorAttribute:
    """A :data:`VisitorAttribute` (``type`` is ``"custom"`` for every attribute the SDK sends)."""
    return (entity_id, key, value, type)


class DecisionMetadata(NamedTuple):
    """The ``metadata`` of a payload decision."""

    flag_key: str
    rule_key: str
    rule_type: str
    variation_key: str
    enabled: bool


class ImpressionEvent(NamedTuple):
    """A decision that was shown to a user (``activate``, ``decide``, feature checks)."""

    context: EventContext
    user_id: str
    attributes: tuple[VisitorAttribute, ...]
    uuid: str | int
    timestamp: int
    campaign_id: str
    experiment_id: str
    variation_id: str | None
    metadata: DecisionMetadata


class ConversionEvent(NamedTuple):
    """A ``track`` call: an event key with optional tags (revenue, value and custom tags)."""

    context: EventContext
    user_id: str
    attributes: tuple[VisitorAttribute, ...]
    uuid: str | int
    timestamp: int
    event_id: str
    event_key: str
    tags: Any  # the event tags as given (a shallow copy of a dict); None when absent
    revenue: int | None
    value: float | None


UserEvent = ImpressionEvent | ConversionEvent
