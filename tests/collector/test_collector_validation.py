"""Invalid payloads are rejected with 400 and the JSON path of the first bad field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.collector.helpers import body_of, conversion, impression, post

from flagstream import _json
from flagstream.collector import Collector
from flagstream.collector.schema import decode_batch
from flagstream.collector.validate import PayloadError, check_batch

VALID: dict[str, Any] = _json.loads(
    body_of([impression("u0"), impression("u1"), conversion("u2", revenue=5)])
)
VALID["visitors"][1]["attributes"] = [{"entity_id": "1", "key": "plan", "type": "custom", "value": "pro"}]


def _mutated(path: str, value: object, delete: bool = False) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    target: Any = doc
    parts = path.replace("[", ".").replace("]", "").split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if delete:
        del target[last]
    else:
        target[last] = value
    return doc


CASES = [
    ("account_id", None, True, "account_id: required field is missing"),
    ("account_id", 12, False, "account_id: expected string, got integer"),
    ("visitors", {}, False, "visitors: expected array, got object"),
    ("anonymize_ip", "no", False, "anonymize_ip: expected boolean, got string"),
    ("revision", 7, False, "revision: expected string, got integer"),
    ("visitors[1]", "x", False, "visitors[1]: expected object, got string"),
    ("visitors[0].visitor_id", None, True, "visitors[0].visitor_id: required field is missing"),
    ("visitors[0].visitor_id", 5, False, "visitors[0].visitor_id: expected string, got integer"),
    ("visitors[0].snapshots", None, True, "visitors[0].snapshots: required field is missing"),
    ("visitors[1].attributes[0].value", None, False, "visitors[1].attributes[0].value: expected string, number or boolean, got null"),
    ("visitors[1].attributes[0].key", None, True, "visitors[1].attributes[0].key: required field is missing"),
    ("visitors[0].snapshots[0].events", None, True, "visitors[0].snapshots[0].events: required field is missing"),
    ("visitors[0].snapshots[0].decisions", "d", False, "visitors[0].snapshots[0].decisions: expected array, got string"),
    ("visitors[0].snapshots[0].decisions[0].campaign_id", None, True, "visitors[0].snapshots[0].decisions[0].campaign_id: required field is missing"),
    ("visitors[0].snapshots[0].decisions[0].experiment_id", 9, False, "visitors[0].snapshots[0].decisions[0].experiment_id: expected string, got integer"),
    ("visitors[0].snapshots[0].decisions[0].variation_id", 9, False, "visitors[0].snapshots[0].decisions[0].variation_id: expected string or null, got integer"),
    ("visitors[0].snapshots[0].decisions[0].metadata.enabled", "yes", False, "visitors[0].snapshots[0].decisions[0].metadata.enabled: expected boolean, got string"),
    ("visitors[2].snapshots[0].events[0].timestamp", "1", False, "visitors[2].snapshots[0].events[0].timestamp: expected integer, got string"),
    ("visitors[2].snapshots[0].events[0].timestamp", 1.5, False, "visitors[2].snapshots[0].events[0].timestamp: expected integer, got number"),
    ("visitors[2].snapshots[0].events[0].timestamp", True, False, "visitors[2].snapshots[0].events[0].timestamp: expected integer, got boolean"),
    ("visitors[2].snapshots[0].events[0].uuid", None, True, "visitors[2].snapshots[0].events[0].uuid: required field is missing"),
    ("visitors[2].snapshots[0].events[0].uuid", "", False, "visitors[2].snapshots[0].events[0].uuid: expected a non-empty string"),
    ("visitors[2].snapshots[0].events[0].entity_id", None, False, "visitors[2].snapshots[0].events[0].entity_id: expected string, got null"),
    ("visitors[2].snapshots[0].events[0].key", None, True, "visitors[2].snapshots[0].events[0].key: required field is missing"),
    ("visitors[2].snapshots[0].events[0].revenue", 1.5, False, "visitors[2].snapshots[0].events[0].revenue: expected integer, got number"),
    ("visitors[2].snapshots[0].events[0].value", "9", False, "visitors[2].snapshots[0].events[0].value: expected number, got string"),
    ("visitors[2].snapshots[0].events[0].tags", [], False, "visitors[2].snapshots[0].events[0].tags: expected object, got array"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "value", "delete", "message"),
    CASES,
    ids=[c[3].split(":")[0] + "-" + c[3].split(": ")[1][:20] for c in CASES],
)
def test_invalid_field_is_rejected_with_its_path(
    collector: Collector, path: str, value: object, delete: bool, message: str
) -> None:
    status, headers, body = post(collector, _json.dumps(_mutated(path, value, delete)))
    assert status == 400
    assert headers["Content-Type"] == "application/json"
    answer = _json.loads(body)
    assert answer["error"] == message
    assert answer["path"] == message.split(":")[0]
    assert collector.event_count() == 0


def test_body_that_is_not_an_object_is_rejected(collector: Collector) -> None:
    status, _, body = post(collector, b"[1, 2]")
    assert status == 400
    assert _json.loads(body)["error"] == "body: expected a JSON object, got array"


def test_valid_payload_passes_both_validators() -> None:
    check_batch(VALID)
    decoded = decode_batch(_json.dumps(VALID))
    assert decoded.n_events == len(decoded.keys) == 3


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: object, prefix: str = "") -> list[str]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, f"{prefix}[{i}]")
    return out


ALL_PATHS = _paths(VALID)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(ALL_PATHS), value=json_values, delete=st.booleans())
def test_fast_decoder_and_path_walker_agree_on_every_mutation(path: str, value: object, delete: bool) -> None:
    doc = _mutated(path, value, delete)
    try:
        check_batch(doc)
        walker_error = None
    except PayloadError as err:
        walker_error = err
    try:
        decode_batch(_json.dumps(doc))
        decoder_error = None
    except PayloadError as err:
        decoder_error = err
    assert (walker_error is None) == (decoder_error is None), (walker_error, decoder_error)
    if walker_error is not None:
        assert str(decoder_error) == str(walker_error)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | json_values.map(_json.dumps))
def test_any_body_is_accepted_or_rejected_with_a_payload_error(body: bytes) -> None:
    error = None
    try:
        decode_batch(body)
    except PayloadError as err:
        error = err
    assert error is None or error.path
