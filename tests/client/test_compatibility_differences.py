"""Each deliberate difference from optimizely-sdk 5.7 (docs/compatibility.md), shown against it."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
from optimizely import optimizely as reference
from optimizely.event.event_processor import ForwardingEventProcessor as ReferenceForwarding

import flagstream
from flagstream.delivery.forwarding import ForwardingEventProcessor
from flagstream.testing import CapturingEventDispatcher

BASIC_DATAFILE = (Path(__file__).parent.parent / "fixtures" / "basic_datafile.json").read_text()


@pytest.fixture(autouse=True)
def _quiet_reference():
    logging.getLogger("optimizely").disabled = True
    yield
    logging.getLogger("optimizely").disabled = False


def _both(**options):
    ours = flagstream.Optimizely(BASIC_DATAFILE, event_dispatcher=CapturingEventDispatcher(), **options)
    theirs = reference.Optimizely(BASIC_DATAFILE, event_dispatcher=CapturingEventDispatcher(), **options)
    return ours, theirs


def test_decide_never_edits_the_default_decide_options():
    ours, theirs = _both(default_decide_options=["ENABLED_FLAGS_ONLY"])
    for client in (ours, theirs):
        user = client.create_user_context("user-1")
        assert list(user.decide_all()) == []
        user.decide("banner", None)
    assert list(theirs.create_user_context("user-1").decide_all()) == ["banner", "empty_flag"]
    assert list(ours.create_user_context("user-1").decide_all()) == []
    assert ours.default_decide_options == ["ENABLED_FLAGS_ONLY"]
    ours.close()
    theirs.close()


def test_enabled_flags_only_twice_still_returns_the_decision():
    ours, theirs = _both(default_decide_options=["ENABLED_FLAGS_ONLY"])
    with pytest.raises(KeyError):
        theirs.create_user_context("user-1").decide("empty_flag", ["ENABLED_FLAGS_ONLY"])
    decision = ours.create_user_context("user-1").decide("empty_flag", ["ENABLED_FLAGS_ONLY"])
    assert (decision.flag_key, decision.enabled, decision.variation_key) == ("empty_flag", False, None)
    ours.close()
    theirs.close()


def _reference_track_body(tags):
    captured = CapturingEventDispatcher()
    client = reference.Optimizely(
        BASIC_DATAFILE, event_dispatcher=captured, event_processor=ReferenceForwarding(captured)
    )
    client.track("purchase", "user-1", None, tags)
    return json.dumps(captured.log_events[0].params)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_tag_values_are_sent_as_json_null(number):
    reference_body = _reference_track_body({"value": number})
    assert "NaN" in reference_body or "Infinity" in reference_body
    captured = CapturingEventDispatcher()
    client = flagstream.Optimizely(BASIC_DATAFILE, event_processor=ForwardingEventProcessor(captured))
    client.track("purchase", "user-1", None, {"value": number, "depth": [number]})
    body = json.loads(captured.bodies()[0])  # strict JSON: would raise on NaN
    (event,) = body["visitors"][0]["snapshots"][0]["events"]
    assert event["tags"] == {"value": None, "depth": [None]}
    assert "value" not in event  # not a finite number, so not the numeric metric


def test_unserializable_tag_values_are_sent_as_text():
    with pytest.raises(AttributeError):
        _reference_track_body({"sizes": {1, 2}})
    captured = CapturingEventDispatcher()
    client = flagstream.Optimizely(BASIC_DATAFILE, event_processor=ForwardingEventProcessor(captured))
    client.track("purchase", "user-1", None, {"sizes": {1, 2}, "revenue": 10})
    (event,) = json.loads(captured.bodies()[0])["visitors"][0]["snapshots"][0]["events"]
    assert event["tags"] == {"sizes": "{1, 2}", "revenue": 10}
    assert event["revenue"] == 10


def test_forced_decision_calls_with_unhashable_context_do_not_raise():
    ours, theirs = _both()
    context_class = flagstream.OptimizelyUserContext.OptimizelyDecisionContext
    forced = flagstream.OptimizelyUserContext.OptimizelyForcedDecision("on")
    theirs_user = theirs.create_user_context("user-1")
    with pytest.raises(TypeError):
        theirs_user.set_forced_decision(type(theirs_user).OptimizelyDecisionContext(["banner"]), forced)
    user = ours.create_user_context("user-1")
    assert user.set_forced_decision(context_class(["banner"]), forced) is False
    assert user.get_forced_decision(context_class(["banner"])) is None
    assert user.remove_forced_decision(context_class("banner", ["rule"])) is False
    assert user.decide("banner").flag_key == "banner"


def test_forced_decision_without_a_variation_key_is_reported_invalid_as_optimizely_does():
    ours, theirs = _both()
    reasons = []
    for client in (ours, theirs):
        user = client.create_user_context("user-1")
        context = type(user).OptimizelyDecisionContext("banner", None)
        user.set_forced_decision(context, type(user).OptimizelyForcedDecision(None))
        reasons.append(user.decide("banner", ["INCLUDE_REASONS"]).reasons)
    assert reasons[0] == reasons[1]
    assert reasons[0][0].startswith("Invalid variation is mapped to flag (banner)")
