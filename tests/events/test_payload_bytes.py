"""The byte writer of build_log_event produces exactly the payload params_of defines."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flagstream.events.ids import format_uuid, new_uuid_bits
from flagstream.events.log_event import LogEvent
from flagstream.events.payload import (
    SLICE_VISITORS,
    _header,
    build_log_event,
    estimated_size,
    log_event_from_visitors,
    params_of,
    visitor_bytes,
)
from flagstream.events.user_event import (
    ConversionEvent,
    DecisionMetadata,
    EventContext,
    ImpressionEvent,
    VisitorAttribute,
    visitor_attribute,
)

CONTEXT = EventContext("1", "2", "3", "flagstream", "0.1", True, False, "US", "http://127.0.0.1:9/v1/events")

text = st.text(max_size=12)
values = st.one_of(
    text,
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
)
attributes = st.lists(
    st.builds(visitor_attribute, text, text, values, st.sampled_from(["custom", "other"])), max_size=4
).map(tuple)
json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), text
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8,
)


def user_events(
    text: st.SearchStrategy[str],
    attributes: st.SearchStrategy[tuple[VisitorAttribute, ...]],
    *,
    ids: st.SearchStrategy[str],
    uuids: st.SearchStrategy[int | str],
    tags: st.SearchStrategy[object],
    revenue: st.SearchStrategy[int | None],
    value: st.SearchStrategy[float | None],
) -> st.SearchStrategy[ImpressionEvent | ConversionEvent]:
    """Impressions and conversions whose strings come from ``text`` and datafile ids from ``ids``."""
    impressions = st.builds(
        ImpressionEvent,
        st.just(CONTEXT),
        text,
        attributes,
        uuids,
        st.integers(0, 2**45),
        ids,
        ids,
        st.one_of(st.none(), st.from_regex(r"[0-9]{1,8}", fullmatch=True)),
        st.builds(DecisionMetadata, text, text, text, text, st.booleans()),
    )
    conversions = st.builds(
        ConversionEvent,
        st.just(CONTEXT),
        text,
        attributes,
        st.integers(0, 2**128 - 1),
        st.integers(0, 2**45),
        ids,
        text,
        tags,
        revenue,
        value,
    )
    return st.one_of(impressions, conversions)


any_events = user_events(
    text,
    attributes,
    ids=text,
    uuids=st.one_of(st.integers(0, 2**128 - 1), st.integers(-(2**130), 2**130), st.uuids().map(str), text),
    tags=st.one_of(st.none(), st.dictionaries(text, json_values, max_size=4)),
    revenue=st.one_of(st.none(), st.integers(-(2**70), 2**70)),
    value=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(any_events, min_size=1, max_size=6))
def test_bytes_parse_to_exactly_the_params_definition(events):
    log_event = build_log_event(events)
    assert typed(json.loads(log_event.body)) == typed(params_of(events))
    assert log_event.params == params_of(events)
    assert log_event.url == CONTEXT.endpoint


@settings(max_examples=60, deadline=None)
@given(st.lists(any_events, min_size=1, max_size=3 * SLICE_VISITORS + 5))
def test_a_body_written_in_slices_is_the_same_bytes(events):
    # The delivery worker writes a batch in slices and lets other threads run between them.
    pauses = []
    sliced = build_log_event(events, lambda: pauses.append(1))
    assert sliced.body == build_log_event(events).body
    assert len(pauses) == (0 if len(events) <= SLICE_VISITORS else -(-len(events) // SLICE_VISITORS))


@settings(max_examples=300, deadline=None)
@given(any_events)
def test_one_visitor_written_alone_is_the_bytes_a_request_holds_for_it(event):
    # The spool writes each visitor on the caller's thread; the worker joins them into a body.
    assert log_event_from_visitors(CONTEXT, [visitor_bytes(event)]).body == build_log_event([event]).body


def test_attributes_made_and_freed_one_after_another_keep_their_own_bytes():
    # The fragment cache is keyed by object identity, and a freed attribute's id is soon reused.
    for i in range(3000):
        value = (i, True, f"v{i}", 1.5 * i)[i % 4]
        attribute = visitor_attribute("7", "a", value)
        event = ConversionEvent(CONTEXT, "u", (attribute,), 5, 1, "9", "buy", None, None, None)
        assert typed(json.loads(visitor_bytes(event))["attributes"][0]["value"]) == typed(value)
        del attribute, event


def typed(value: object) -> object:
    """``value`` with the type of every leaf kept: ``True == 1 == 1.0`` in Python, not in JSON."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def test_values_that_compare_equal_keep_their_own_json_types():
    # The attribute fragment cache must not hand 1's bytes to True or to 1.0.
    events = [
        ConversionEvent(
            CONTEXT, "u", (visitor_attribute("7", "a", value),), 5, 1, "9", "buy", None, None, None
        )
        for value in (1, True, 1.0, 1, True)
    ]
    visitors = json.loads(build_log_event(events).body)["visitors"]
    assert [typed(v["attributes"][0]["value"]) for v in visitors] == [
        ("int", 1),
        ("bool", True),
        ("float", 1.0),
        ("int", 1),
        ("bool", True),
    ]


def test_zero_and_negative_zero_are_each_written_as_given():
    events = [
        ConversionEvent(
            CONTEXT, "u", (visitor_attribute("7", "a", value),), 5, 1, "9", "buy", None, None, None
        )
        for value in (0.0, -0.0, 0.0)
    ]
    body = build_log_event(events).body
    assert body.count(b'"value":0.0}') == 2
    assert body.count(b'"value":-0.0}') == 1


def test_a_uuid_given_as_text_is_written_as_a_json_string():
    event = ConversionEvent(CONTEXT, "u", (), 'a"b\\c', 1, "9", "buy", None, None, None)
    visitor = json.loads(build_log_event([event]).body)["visitors"][0]
    assert visitor["snapshots"][0]["events"][0]["uuid"] == 'a"b\\c'


def test_a_batch_formats_each_uuid_as_format_uuid_does():
    bits = [new_uuid_bits(128) for _ in range(300)] + [0, 2**128 - 1]
    events = [ConversionEvent(CONTEXT, "u", (), b, 1, "9", "buy", None, None, None) for b in bits]
    visitors = json.loads(build_log_event(events).body)["visitors"]
    assert [v["snapshots"][0]["events"][0]["uuid"] for v in visitors] == [format_uuid(b) for b in bits]


def test_params_are_parsed_lazily_and_bytes_never_change():
    event = ConversionEvent(CONTEXT, "u", (), new_uuid_bits(128), 1, "9", "buy", {"n": 2**70}, None, 1.5)
    log_event = build_log_event([event])
    body = log_event.body
    assert log_event.params["visitors"][0]["snapshots"][0]["events"][0]["tags"] == {"n": 2**70}
    log_event.params["visitors"] = []
    assert log_event.body == body


def test_a_log_event_needs_params_or_body():

    with pytest.raises(ValueError):
        LogEvent("u")
    with pytest.raises(AttributeError):
        LogEvent("u", {}).url = "v"  # type: ignore[misc]


def test_non_finite_tag_values_become_null_in_the_body():
    event = ConversionEvent(CONTEXT, "u", (), 1, 1, "9", "buy", {"v": math.nan}, None, None)
    assert json.loads(build_log_event([event]).body)["visitors"][0]["snapshots"][0]["events"][0]["tags"] == {
        "v": None
    }


# Characters JSON writes as themselves; the estimate counts escapes as one character.
printable = st.text(
    st.characters(min_codepoint=32, exclude_categories=("Cs", "Cc"), exclude_characters='"\\'), max_size=40
)
ids = st.from_regex(r"[0-9]{1,12}", fullmatch=True)
printable_attributes = st.lists(
    st.builds(
        visitor_attribute,
        ids,
        printable,
        st.one_of(printable, st.integers(-(2**53), 2**53)),
        st.just("custom"),
    ),
    max_size=4,
).map(tuple)


@settings(max_examples=200, deadline=None)
@given(
    user_events(
        printable,
        printable_attributes,
        ids=ids,
        uuids=st.integers(0, 2**128 - 1),
        tags=st.one_of(st.none(), st.dictionaries(printable, printable, max_size=3)),
        revenue=st.none(),
        value=st.none(),
    )
)
def test_the_size_estimate_is_at_least_the_utf8_bytes_of_the_visitor(event):
    header = len(build_log_event([event]).body) - len(b"]}")
    visitor = header - len(_header(CONTEXT))
    assert estimated_size(event) >= visitor
