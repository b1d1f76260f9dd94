"""Event API payloads: user events in, one ``LogEvent`` out.

``build_log_event`` runs on the delivery worker (or on the caller's thread
with the forwarding processor, as optimizely-sdk does). The field layout and
values follow what optimizely-sdk 5.7 sends; ``tests/events`` checks it
differentially.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flagstream.events.ids import format_uuid
from flagstream.events.log_event import JSON_HEADERS, LogEvent
from flagstream.events.user_event import ImpressionEvent, UserEvent, VisitorAttribute

__all__ = ["ACTIVATE_EVENT_KEY", "build_log_event", "estimated_size", "visitor_of"]

ACTIVATE_EVENT_KEY = "campaign_activated"

# Fixed JSON overhead of one visitor (keys, brackets, uuid, timestamp) and of one
# attribute; measured on real payloads and rounded up so the estimate errs high.
_VISITOR_OVERHEAD = 260
_ATTRIBUTE_OVERHEAD = 64
_DECISION_OVERHEAD = 150


def _attributes(attributes: tuple[VisitorAttribute, ...]) -> list[dict[str, Any]]:
    return [{"entity_id": a.entity_id, "key": a.key, "type": a.type, "value": a.value} for a in attributes]


def visitor_of(event: UserEvent) -> dict[str, Any]:
    """The ``visitors[]`` entry for one user event."""
    snapshot: dict[str, Any]
    if isinstance(event, ImpressionEvent):
        m = event.metadata
        snapshot = {
            "decisions": [
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
            ],
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


def build_log_event(events: Sequence[UserEvent]) -> LogEvent:
    """One Event API request for ``events``, which must share one :class:`EventContext`.

    Raises ``ValueError`` when ``events`` is empty or mixes contexts: the batch
    processor groups by context before calling this.
    """
    if not events:
        raise ValueError("build_log_event needs at least one event")
    context = events[0].context
    if any(e.context != context for e in events):
        raise ValueError("events of one request must share one EventContext")
    params = {
        "account_id": context.account_id,
        "project_id": context.project_id,
        "revision": context.revision,
        "client_name": context.client_name,
        "client_version": context.client_version,
        "anonymize_ip": context.anonymize_ip,
        "enrich_decisions": True,
        "visitors": [visitor_of(e) for e in events],
    }
    return LogEvent(context.endpoint, params, "POST", dict(JSON_HEADERS))


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
