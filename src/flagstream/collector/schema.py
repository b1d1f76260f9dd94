"""The Event API batch as typed structs: the collector's fast decode-and-validate path.

``msgspec`` decodes a body straight into these structs and checks every type
in C, about five times faster than parsing to dicts and walking them in
Python (about 2 µs per event, most of the collector's CPU at ingest; see
:mod:`flagstream.collector.workers` for running it in other processes). When
decoding fails, :func:`flagstream.collector.validate.check_batch` walks the
parsed JSON to name the first bad field in the collector's own words.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

import msgspec

from flagstream import _json
from flagstream.collector.validate import PayloadError, check_batch

__all__ = [
    "Attribute",
    "Batch",
    "Decision",
    "DecisionMeta",
    "DecodedBatch",
    "Event",
    "EventKey",
    "Snapshot",
    "Visitor",
    "decode",
    "decode_batch",
]

# (uuid, entity_id, timestamp): what the Event API de-duplicates on
EventKey = tuple[str, str, int]


class Attribute(msgspec.Struct, frozen=True, gc=False):
    """One visitor attribute."""

    entity_id: str
    key: str
    type: str
    value: str | int | float | bool


class DecisionMeta(msgspec.Struct, frozen=True, gc=False):
    """A decision's ``metadata``."""

    flag_key: str = ""
    rule_key: str = ""
    rule_type: str = ""
    variation_key: str = ""
    enabled: bool | None = None


class Decision(msgspec.Struct, frozen=True, gc=False):
    """One decision of a snapshot."""

    campaign_id: str
    experiment_id: str
    variation_id: str | None
    metadata: DecisionMeta | None = None
    is_campaign_holdback: bool | None = None


class Event(msgspec.Struct, frozen=True, gc=False):
    """One event of a snapshot."""

    entity_id: str
    key: str
    timestamp: int
    uuid: Annotated[str, msgspec.Meta(min_length=1)]
    revenue: int | None = None
    value: float | None = None
    tags: dict[str, Any] | None = None


class Snapshot(msgspec.Struct, frozen=True, gc=False):
    """Events and the decisions they carry."""

    events: list[Event]
    decisions: list[Decision] | None = None


class Visitor(msgspec.Struct, frozen=True, gc=False):
    """One visitor of a batch."""

    visitor_id: str
    snapshots: list[Snapshot]
    attributes: list[Attribute] | None = None
    session_id: str | None = None


class Batch(msgspec.Struct, frozen=True, gc=False):
    """One ``POST /v1/events`` body."""

    account_id: str
    visitors: list[Visitor]
    project_id: str = ""
    revision: str = ""
    client_name: str = ""
    client_version: str = ""
    anonymize_ip: bool = False
    enrich_decisions: bool = False


_DECODER = msgspec.json.Decoder(Batch)


def _explain(body: bytes, fallback: str) -> PayloadError:
    try:
        check_batch(_json.loads(body))
    except PayloadError as err:
        return err
    except _json.JSONDecodeError as exc:
        return PayloadError("body", f"invalid JSON ({exc})")
    return PayloadError("body", fallback)  # the schemas disagree; say what msgspec said


class DecodedBatch(NamedTuple):
    """A validated body: its events' keys in body order (repeats included) and as a set.

    The store needs nothing else at ingest: the body itself is what it keeps,
    and it is decoded again into rows when something reads it.
    """

    ordered: list[EventKey]
    keys: set[EventKey]

    @property
    def n_events(self) -> int:
        """How many events the body holds, repeats included."""
        return len(self.ordered)

    @classmethod
    def of(cls, ordered: list[EventKey]) -> DecodedBatch:
        """The decoded batch of these keys (the set is built in C, for the store's set difference)."""
        return cls(ordered, set(ordered))


def event_keys(batch: Batch) -> list[EventKey]:
    """The keys of ``batch``'s events in body order, repeats included."""
    return [(e.uuid, e.entity_id, e.timestamp) for v in batch.visitors for s in v.snapshots for e in s.events]


def decode(body: bytes) -> Batch:
    """Decode and validate one body into a :class:`Batch`, or raise :class:`PayloadError` naming the first bad field."""
    try:
        return _DECODER.decode(body)
    except msgspec.ValidationError as exc:
        raise _explain(body, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise PayloadError("body", f"invalid JSON ({exc})") from None
    except UnicodeDecodeError as exc:
        raise PayloadError("body", f"invalid JSON: not UTF-8 ({exc.reason} at byte {exc.start})") from None


def decode_batch(body: bytes) -> DecodedBatch:
    """Decode and validate one body, or raise :class:`PayloadError` naming the first bad field."""
    return DecodedBatch.of(event_keys(decode(body)))
