"""What the client sends: impressions, conversions, endpoints and notifications."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

import flagstream
from flagstream.delivery.forwarding import ForwardingEventProcessor
from flagstream.testing import CapturingEventDispatcher

BASIC_DATAFILE = (Path(__file__).parent.parent / "fixtures" / "basic_datafile.json").read_text()


def _only_visitor(dispatcher):
    (log_event,) = dispatcher.log_events
    (visitor,) = log_event.params["visitors"]
    return log_event, visitor


def test_activate_sends_one_impression_with_the_experiment_decision(client, dispatcher):
    assert client.activate("checkout_test", "vip", {"country": "de", "age": 30}) == "treatment"
    log_event, visitor = _only_visitor(dispatcher)
    assert log_event.url == "https://logx.optimizely.com/v1/events"
    assert log_event.http_verb == "POST"
    assert log_event.headers == {"Content-Type": "application/json"}
    params = log_event.params
    assert (params["account_id"], params["project_id"], params["revision"]) == ("12001", "12002", "42")
    assert params["anonymize_ip"] is True
    assert params["enrich_decisions"] is True
    assert params["client_name"] == "flagstream"
    (snapshot,) = visitor["snapshots"]
    assert snapshot["decisions"] == [
        {
            "campaign_id": "501",
            "experiment_id": "401",
            "variation_id": "4012",
            "metadata": {
                "flag_key": "",
                "rule_key": "checkout_test",
                "rule_type": "experiment",
                "variation_key": "treatment",
                "enabled": True,
            },
        }
    ]
    (event,) = snapshot["events"]
    assert event["key"] == "campaign_activated"
    assert event["entity_id"] == "501"
    assert uuid.UUID(event["uuid"]).version == 4
    assert visitor["attributes"] == [
        {"entity_id": "111", "key": "country", "type": "custom", "value": "de"},
        {"entity_id": "112", "key": "age", "type": "custom", "value": 30},
        {"entity_id": "$opt_bot_filtering", "key": "$opt_bot_filtering", "type": "custom", "value": False},
    ]
    assert json.loads(log_event.body) == params


def test_track_sends_revenue_and_value_from_tags(client, dispatcher):
    client.track(
        "purchase", "user-1", {"$opt_user_agent": "bot"}, {"revenue": 4200, "value": "12.5", "sku": "a"}
    )
    _, visitor = _only_visitor(dispatcher)
    (event,) = visitor["snapshots"][0]["events"]
    assert (event["entity_id"], event["key"], event["revenue"], event["value"]) == (
        "301",
        "purchase",
        4200,
        12.5,
    )
    assert event["tags"] == {"revenue": 4200, "value": "12.5", "sku": "a"}
    assert "decisions" not in visitor["snapshots"][0]
    assert visitor["attributes"][0] == {
        "entity_id": "$opt_user_agent",
        "key": "$opt_user_agent",
        "type": "custom",
        "value": "bot",
    }


@pytest.mark.parametrize(
    ("tags", "revenue", "value"),
    [
        ({"revenue": True, "value": False}, None, None),
        ({"revenue": 1.5, "value": float("nan")}, None, None),
        ({"revenue": "100", "value": "1,234"}, None, None),
        ({"revenue": -3, "value": 7}, -3, 7.0),
    ],
)
def test_revenue_is_an_integer_and_value_a_finite_number(client, dispatcher, tags, revenue, value):
    client.track("purchase", "user-1", None, tags)
    _, visitor = _only_visitor(dispatcher)
    (event,) = visitor["snapshots"][0]["events"]
    assert event.get("revenue") == revenue
    assert event.get("value") == value
    json.loads(dispatcher.log_events[0].body)  # always valid JSON, even with NaN in tags


def test_tags_mutated_after_track_do_not_change_what_is_sent(dispatcher):
    client = flagstream.Optimizely(BASIC_DATAFILE, event_dispatcher=dispatcher)
    tags = {"revenue": 1}
    client.track("purchase", "user-1", None, tags)
    tags["revenue"] = 999
    assert client.flush(5).completed
    (event,) = dispatcher.events()
    assert event["revenue"] == 1
    client.close()


def test_event_endpoint_changes_where_bytes_go_not_the_bytes(dispatcher, monkeypatch):
    direct = CapturingEventDispatcher()
    flagstream.Optimizely(BASIC_DATAFILE, event_processor=ForwardingEventProcessor(direct)).track(
        "purchase", "u"
    )
    redirected = flagstream.Optimizely(
        BASIC_DATAFILE,
        event_processor=ForwardingEventProcessor(dispatcher),
        event_endpoint="http://127.0.0.1:9/v1/events",
    )
    redirected.track("purchase", "u")
    assert dispatcher.log_events[0].url == "http://127.0.0.1:9/v1/events"
    mine, theirs = dispatcher.log_events[0].params, direct.log_events[0].params
    for params in (mine, theirs):
        event = params["visitors"][0]["snapshots"][0]["events"][0]
        event.pop("uuid")
        event.pop("timestamp")
    assert mine == theirs

    monkeypatch.setenv("FLAGSTREAM_EVENT_ENDPOINT", "http://127.0.0.1:10/v1/events")
    from_env = CapturingEventDispatcher()
    flagstream.Optimizely(BASIC_DATAFILE, event_processor=ForwardingEventProcessor(from_env)).track(
        "purchase", "u"
    )
    assert from_env.log_events[0].url == "http://127.0.0.1:10/v1/events"


def test_eu_region_uses_the_eu_endpoint(dispatcher):
    datafile = json.loads(BASIC_DATAFILE)
    datafile["region"] = "EU"
    client = flagstream.Optimizely(json.dumps(datafile), event_processor=ForwardingEventProcessor(dispatcher))
    client.track("purchase", "u")
    assert dispatcher.log_events[0].url == "https://eu.logx.optimizely.com/v1/events"


def test_notifications_carry_optimizely_sdk_arguments(client):
    seen: dict[str, tuple] = {}
    types = flagstream.NotificationTypes
    center = client.notification_center
    center.add_notification_listener(types.ACTIVATE, lambda *a: seen.setdefault("activate", a))
    center.add_notification_listener(types.TRACK, lambda *a: seen.setdefault("track", a))
    center.add_notification_listener(types.DECISION, lambda *a: seen.setdefault("decision", a))
    center.add_notification_listener(types.LOG_EVENT, lambda *a: seen.setdefault("log_event", a))

    client.activate("checkout_test", "vip", {"age": 30})
    client.track("purchase", "vip", {"age": 30}, {"revenue": 5})

    experiment, user_id, attributes, variation, event = seen["activate"]
    assert (experiment.key, user_id, attributes, variation.key) == (
        "checkout_test",
        "vip",
        {"age": 30},
        "treatment",
    )
    assert set(event) == {"url", "http_verb", "params", "headers"}
    assert seen["track"][:4] == ("purchase", "vip", {"age": 30}, {"revenue": 5})
    assert seen["decision"] == (
        "ab-test",
        "vip",
        {"age": 30},
        {"experiment_key": "checkout_test", "variation_key": "treatment"},
    )
    assert seen["log_event"][0].params["visitors"][0]["visitor_id"] == "vip"


def test_optimizely_sdks_own_notification_center_gets_every_notification(dispatcher):
    # optimizely-sdk's NotificationCenter has no has_listeners(): decide used to fail on it (an
    # "Unexpected error" and an empty decision) while the constructor accepted it.
    from optimizely.notification_center import NotificationCenter

    center = NotificationCenter()
    seen: list[str] = []
    for kind in ("ACTIVATE", "TRACK", "DECISION"):
        notification_type = getattr(flagstream.NotificationTypes, kind)
        center.add_notification_listener(notification_type, lambda *a, kind=kind: seen.append(kind))
    client = flagstream.Optimizely(
        BASIC_DATAFILE, event_processor=ForwardingEventProcessor(dispatcher), notification_center=center
    )
    decision = client.create_user_context("vip", {"country": "de", "age": 30}).decide("banner")
    assert (decision.variation_key, decision.enabled) == ("on", True)
    assert client.activate("checkout_test", "vip", {"age": 30}) == "treatment"
    client.track("purchase", "vip")
    client.close()
    assert seen == ["ACTIVATE", "DECISION", "DECISION", "ACTIVATE", "TRACK"]
    assert len(dispatcher.log_events) == 3


def test_decide_sends_flag_decisions_when_the_datafile_asks(client, dispatcher):
    user = client.create_user_context("user-1", {"country": "de"})
    decision = user.decide("banner", ["INCLUDE_REASONS"])
    assert decision.flag_key == "banner"
    assert decision.user_context is not None
    assert decision.user_context.user_id == "user-1"
    assert dispatcher.log_events, "sendFlagDecisions is true in the datafile"
    metadata = dispatcher.log_events[-1].params["visitors"][0]["snapshots"][0]["decisions"][0]["metadata"]
    assert metadata["flag_key"] == "banner"
    assert metadata["variation_key"] == (decision.variation_key or "")
    dispatcher.clear()
    user.decide("banner", ["DISABLE_DECISION_EVENT"])
    assert dispatcher.log_events == []


def test_forced_decision_wins_and_is_reported(client):
    user = client.create_user_context("user-1")
    context = flagstream.OptimizelyUserContext.OptimizelyDecisionContext("banner", None)
    assert user.set_forced_decision(context, flagstream.OptimizelyUserContext.OptimizelyForcedDecision("on"))
    decision = user.decide("banner")
    assert (decision.variation_key, decision.enabled, decision.rule_key) == ("on", True, None)
    assert decision.variables["color"] == "red"
    assert user.get_forced_decision(context).variation_key == "on"
    assert user.remove_forced_decision(context)
    assert not user.remove_forced_decision(context)


def test_typed_variable_getters_follow_the_forced_variation(client):
    assert client.set_forced_variation("banner_feature_test", "user-1", "on")
    assert client.get_forced_variation("banner_feature_test", "user-1") == "on"
    assert client.is_feature_enabled("banner", "user-1") is True
    assert client.get_feature_variable_string("banner", "color", "user-1") == "red"
    assert client.get_feature_variable_integer("banner", "count", "user-1") == 3
    assert client.get_feature_variable_double("banner", "ratio", "user-1") == 0.5
    assert client.get_feature_variable_boolean("banner", "show", "user-1") is True
    assert client.get_feature_variable_json("banner", "config", "user-1") == {"a": 1}
    assert client.get_feature_variable("banner", "count", "user-1") == 3
    assert client.get_all_feature_variables("banner", "user-1") == {
        "color": "red",
        "count": 3,
        "ratio": 0.5,
        "show": True,
        "config": {"a": 1},
    }
    assert client.set_forced_variation("banner_feature_test", "user-1", None)
    assert client.get_forced_variation("banner_feature_test", "user-1") is None


def test_a_user_built_batch_processor_reports_to_the_clients_listeners(dispatcher):
    processor = flagstream.BatchEventProcessor(dispatcher, flush_interval=0.05)
    client = flagstream.Optimizely(BASIC_DATAFILE, event_processor=processor)
    seen_requests, outcomes = [], []
    center = client.notification_center
    center.add_notification_listener(flagstream.NotificationTypes.LOG_EVENT, seen_requests.append)
    center.add_notification_listener(flagstream.NotificationTypes.DELIVERY, outcomes.append)
    client.track("purchase", "user-1")
    report = client.close(5)
    assert report.delivered == 1
    assert [r.body for r in seen_requests] == dispatcher.bodies()
    assert sum(o.events for o in outcomes if o.delivered) == 1


def test_decision_variables_are_the_callers_own_to_mutate(client):
    # Values are cast once per config and variation; each decision must get its own dicts.
    user = client.create_user_context("user-1", {"age": 30, "country": "de"})
    first = user.decide("banner", ["DISABLE_DECISION_EVENT"])
    expected = dict(first.variables)
    first.variables.clear()
    assert client.get_all_feature_variables("banner", "user-1", {"age": 30, "country": "de"}) == expected
    second = user.decide("banner", ["DISABLE_DECISION_EVENT"])
    assert second.variables == expected
    second.variables["config"]["added"] = True  # a json variable: a fresh parse every time
    assert user.decide("banner", ["DISABLE_DECISION_EVENT"]).variables == expected
    assert user.decide("empty_flag", ["DISABLE_DECISION_EVENT"]).variables == {}


def test_json_variables_parsed_on_first_read_are_the_decisions_own_and_the_listeners(client):
    # A decision parses its json variables when they are first read, once; a DECISION
    # listener gets the very dict the decision holds.
    user = client.create_user_context("user-1", {"age": 30, "country": "de"})
    lazy = user.decide("banner", ["DISABLE_DECISION_EVENT"])
    assert "config" in repr(lazy)
    assert lazy.variables is lazy.variables
    assert lazy.variables == client.get_all_feature_variables(
        "banner", "user-1", {"age": 30, "country": "de"}
    )
    other = user.decide("banner", ["DISABLE_DECISION_EVENT"])
    other.variables = {"set": True}
    assert other.variables == {"set": True}
    assert other.as_json()["variables"] == {"set": True}
    heard = []
    client.notification_center.add_notification_listener(
        flagstream.NotificationTypes.DECISION, lambda kind, uid, attrs, info: heard.append(info)
    )
    told = user.decide("banner", ["DISABLE_DECISION_EVENT"])
    assert heard[-1]["variables"] is told.variables
    assert told.variables["config"] == lazy.variables["config"]
    assert told.variables["config"] is not lazy.variables["config"]


def test_optimizely_decision_keeps_the_dataclass_constructor_repr_and_identity_it_had():
    # A native class in the compiled build: the same fields, order, defaults and repr as the
    # slotted dataclass before it, in both builds, and it keeps whatever it is given.
    from flagstream.user_context import OptimizelyDecision

    values = {
        "variation_key": "on",
        "enabled": True,
        "variables": {"v": 1},
        "rule_key": "r",
        "flag_key": "f",
        "user_context": None,
        "reasons": ["why"],
    }
    by_position = OptimizelyDecision(*values.values())
    by_name = OptimizelyDecision(**values)
    for decision in (by_position, by_name):
        assert {name: getattr(decision, name) for name in values} == values
    assert repr(by_name) == (
        "OptimizelyDecision(variation_key='on', enabled=True, variables={'v': 1}, rule_key='r', "
        "flag_key='f', user_context=None, reasons=['why'])"
    )
    assert by_position != by_name  # identity equality, as with eq=False
    empty, other = OptimizelyDecision(), OptimizelyDecision()
    assert (empty.variation_key, empty.enabled, empty.variables, empty.reasons) == (None, False, {}, [])
    assert empty.variables is not other.variables
    assert empty.reasons is not other.reasons
    odd = OptimizelyDecision(variation_key=1, enabled=None, variables=None, flag_key=("a",), reasons=())
    assert (odd.variation_key, odd.enabled, odd.variables, odd.flag_key, odd.reasons) == (
        1,
        None,
        None,
        ("a",),
        (),
    )
    assert OptimizelyDecision.__doc__
    assert "result of ``decide``" in OptimizelyDecision.__doc__
    assert by_name.as_json()["user_context"] is None
