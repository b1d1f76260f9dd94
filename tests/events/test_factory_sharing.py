"""Events share one object per distinct attribute and decision, without mixing values that compare equal."""

from __future__ import annotations

import gc
import json
from pathlib import Path

from flagstream.config.project_config import ProjectConfig
from flagstream.events.factory import event_context, impression_event, visitor_attributes
from flagstream.events.payload import build_log_event

DATAFILE = (Path(__file__).resolve().parents[1] / "fixtures" / "basic_datafile.json").read_text()


def _config() -> ProjectConfig:
    return ProjectConfig.from_datafile(DATAFILE)


def test_equal_attributes_are_one_shared_object():
    config = _config()
    first = visitor_attributes(config, {"country": "de", "age": 30})
    second = visitor_attributes(config, {"country": "de", "age": 30})
    assert first == second
    assert all(a is b for a, b in zip(first, second, strict=True))


def test_the_collector_stops_tracking_an_events_attributes():
    # Plain tuples of strings and numbers: after one pass CPython no longer tracks them,
    # so a queued event is one tracked object and the passes over a backlog are shorter.
    config = _config()
    context = event_context(config)
    experiment = config.experiment_key_map["checkout_test"]
    attributes = {"country": "de", "age": 30, "app_version": 2.5, "$opt_user_agent": "bot"}
    event = impression_event(
        config,
        context,
        experiment,
        experiment.variations[0],
        "",
        "checkout_test",
        "experiment",
        True,
        "u",
        attributes,
    )
    assert len(event.attributes) >= 4  # four attributes (a float among them), bot filtering if set
    # A pass untracks a tuple whose items are untracked when it gets to it; the attributes
    # made for this event may come after their tuple, so the second pass untracks that.
    gc.collect()
    gc.collect()
    assert not gc.is_tracked(event.attributes)
    assert not any(gc.is_tracked(attribute) for attribute in event.attributes)


def test_values_that_compare_equal_keep_their_own_type():
    # True == 1 and they hash alike; a shared object must not hand one's type to the other.
    config = _config()
    values = [visitor_attributes(config, {"age": value})[0][2] for value in (True, 1, 1.0, True, 1)]
    assert [type(v) for v in values] == [bool, int, float, bool, int]


def test_shared_decision_metadata_keeps_the_enabled_flag_and_payload():
    config = _config()
    context = event_context(config)
    experiment = config.experiment_key_map["checkout_test"]
    variation = experiment.variations[0]
    events = [
        impression_event(
            config, context, experiment, variation, "", "checkout_test", "experiment", enabled, "u", {}
        )
        for enabled in (True, False, True)
    ]
    assert events[0].metadata is events[2].metadata
    assert [e.metadata.enabled for e in events] == [True, False, True]
    body = json.loads(build_log_event(events).body)
    assert [v["snapshots"][0]["decisions"][0]["metadata"]["enabled"] for v in body["visitors"]] == [
        True,
        False,
        True,
    ]
