"""Event API payload rules, checked on parsed JSON to name the first bad field.

The rules follow Optimizely's Event API reference for ``POST /v1/events``:
required fields and their JSON types for the batch, its visitors, their
attributes and snapshots, and each snapshot's decisions and events. The first
problem found is reported with its JSON path, e.g.
``visitors[2].snapshots[0].events[0].timestamp: expected integer, got string``.

The hot path decodes with the typed schema in :mod:`flagstream.collector.schema`;
this walker runs only when that fails, to say why in these words.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PayloadError", "check_batch"]


class PayloadError(ValueError):
    """The body is not a valid Event API batch; ``path`` names the first bad field."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


_OPTIONAL_STRINGS = ("project_id", "revision", "client_name", "client_version")
_OPTIONAL_BOOLS = ("anonymize_ip", "enrich_decisions")
_METADATA_STRINGS = ("flag_key", "rule_key", "rule_type", "variation_key")
_KINDS = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def _kind(value: object) -> str:
    return "null" if value is None else _KINDS.get(type(value), type(value).__name__)


def _require(obj: dict[str, Any], key: str, path: str, expected: type, label: str) -> Any:
    if key not in obj:
        raise PayloadError(f"{path}{key}", "required field is missing")
    value = obj[key]
    if type(value) is not expected:  # exact type: a boolean is not an integer here
        raise PayloadError(f"{path}{key}", f"expected {label}, got {_kind(value)}")
    return value


def _optional(obj: dict[str, Any], key: str, path: str, types: tuple[type, ...], label: str) -> None:
    value = obj.get(key)
    if value is not None and type(value) not in types:
        raise PayloadError(f"{path}{key}", f"expected {label}, got {_kind(value)}")


def _attributes(raw: object, path: str) -> None:
    if type(raw) is not list:
        raise PayloadError(path, f"expected array, got {_kind(raw)}")
    for i, attr in enumerate(raw):
        p = f"{path}[{i}]"
        if type(attr) is not dict:
            raise PayloadError(p, f"expected object, got {_kind(attr)}")
        for key in ("entity_id", "key", "type"):
            _require(attr, key, p + ".", str, "string")
        if "value" not in attr:
            raise PayloadError(p + ".value", "required field is missing")
        if type(attr["value"]) not in (str, int, float, bool):
            raise PayloadError(
                p + ".value", f"expected string, number or boolean, got {_kind(attr['value'])}"
            )


def _decision(raw: object, path: str) -> None:
    if type(raw) is not dict:
        raise PayloadError(path, f"expected object, got {_kind(raw)}")
    p = path + "."
    _require(raw, "campaign_id", p, str, "string")
    _require(raw, "experiment_id", p, str, "string")
    if "variation_id" not in raw:
        raise PayloadError(p + "variation_id", "required field is missing")
    _optional(raw, "variation_id", p, (str,), "string or null")
    _optional(raw, "is_campaign_holdback", p, (bool,), "boolean")
    meta = raw.get("metadata")
    if meta is None:
        return
    if type(meta) is not dict:
        raise PayloadError(p + "metadata", f"expected object, got {_kind(meta)}")
    for key in _METADATA_STRINGS:
        if key in meta and type(meta[key]) is not str:
            raise PayloadError(f"{p}metadata.{key}", f"expected string, got {_kind(meta[key])}")
    _optional(meta, "enabled", p + "metadata.", (bool,), "boolean")


def _event(raw: object, path: str) -> None:
    if type(raw) is not dict:
        raise PayloadError(path, f"expected object, got {_kind(raw)}")
    p = path + "."
    _require(raw, "entity_id", p, str, "string")
    _require(raw, "key", p, str, "string")
    _require(raw, "timestamp", p, int, "integer")
    if not _require(raw, "uuid", p, str, "string"):
        raise PayloadError(p + "uuid", "expected a non-empty string")
    _optional(raw, "revenue", p, (int,), "integer")
    _optional(raw, "value", p, (int, float), "number")
    _optional(raw, "tags", p, (dict,), "object")


def check_batch(batch: object) -> None:
    """Raise :class:`PayloadError` naming the first field of ``batch`` (parsed JSON) that breaks the rules."""
    if type(batch) is not dict:
        raise PayloadError("body", f"expected a JSON object, got {_kind(batch)}")
    _require(batch, "account_id", "", str, "string")
    for key in _OPTIONAL_STRINGS:
        if key in batch and type(batch[key]) is not str:
            raise PayloadError(key, f"expected string, got {_kind(batch[key])}")
    for key in _OPTIONAL_BOOLS:
        if key in batch and type(batch[key]) is not bool:
            raise PayloadError(key, f"expected boolean, got {_kind(batch[key])}")
    for vi, visitor in enumerate(_require(batch, "visitors", "", list, "array")):
        vp = f"visitors[{vi}]"
        if type(visitor) is not dict:
            raise PayloadError(vp, f"expected object, got {_kind(visitor)}")
        _require(visitor, "visitor_id", vp + ".", str, "string")
        _optional(visitor, "session_id", vp + ".", (str,), "string")
        if visitor.get("attributes") is not None:
            _attributes(visitor["attributes"], vp + ".attributes")
        for si, snapshot in enumerate(_require(visitor, "snapshots", vp + ".", list, "array")):
            sp = f"{vp}.snapshots[{si}]"
            if type(snapshot) is not dict:
                raise PayloadError(sp, f"expected object, got {_kind(snapshot)}")
            for ei, event in enumerate(_require(snapshot, "events", sp + ".", list, "array")):
                _event(event, f"{sp}.events[{ei}]")
            decisions = snapshot.get("decisions")
            if decisions is None:
                continue
            if type(decisions) is not list:
                raise PayloadError(sp + ".decisions", f"expected array, got {_kind(decisions)}")
            for di, decision in enumerate(decisions):
                _decision(decision, f"{sp}.decisions[{di}]")
