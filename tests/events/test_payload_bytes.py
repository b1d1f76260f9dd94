"""The byte writer of build_log_event produces exactly the payload params_of defines."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flagstream.events.ids import new_uuid_bits
from flagstream.events.log_event import LogEvent
from flagstream.events.payload import build_log_event, params_of
from flagstream.events.user_event import (
    ConversionEvent,
    DecisionMetadata,
    EventContext,
    ImpressionEvent,
    VisitorAttribute,
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
    st.builds(VisitorAttribute, text, text, values, st.sampled_from(["custom", "other"])), max_size=4
).map(tuple)
json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), text
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8,
)
impressions = st.builds(
    ImpressionEvent,
    st.just(CONTEXT),
    text,
    attributes,
    st.one_of(st.integers(0, 2**128 - 1), st.uuids().map(str)),
    st.integers(0, 2**45),
    text,
    text,
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
    text,
    text,
    st.one_of(st.none(), st.dictionaries(text, json_values, max_size=4)),
    st.one_of(st.none(), st.integers(-(2**70), 2**70)),
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(impressions, conversions), min_size=1, max_size=6))
def test_bytes_parse_to_exactly_the_params_definition(events):
    log_event = build_log_event(events)
    assert json.loads(log_event.body) == params_of(events)
    assert log_event.params == params_of(events)
    assert log_event.url == CONTEXT.endpoint


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
