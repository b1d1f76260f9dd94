"""Every public call, given bad input, returns optimizely-sdk's default, logs one line and never raises."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

import flagstream
from flagstream.delivery.forwarding import ForwardingEventProcessor
from flagstream.errors import ConfigurationError
from flagstream.testing import CapturingEventDispatcher

BASIC_DATAFILE = (Path(__file__).parent.parent / "fixtures" / "basic_datafile.json").read_text()


BAD_KEYS = [None, "", 5, 3.2, [], {}, ["checkout_test"], object()]
BAD_USER_IDS = [None, 5, 3.2, [], {}, b"bytes", object()]
BAD_ATTRIBUTES = ["country", 5, ["country"], ("a", 1), object()]


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "flagstream" and r.levelno >= logging.ERROR]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_activate_with_a_bad_experiment_key_returns_none_and_logs(client, dispatcher, sdk_log, key):
    assert client.activate(key, "user-1") is None
    assert _errors(sdk_log) == ['Provided "experiment_key" is in an invalid format.']
    assert dispatcher.log_events == []


@pytest.mark.parametrize("user_id", BAD_USER_IDS)
def test_every_call_rejects_a_non_string_user_id(client, dispatcher, sdk_log, user_id):
    assert client.activate("checkout_test", user_id) is None
    assert client.get_variation("checkout_test", user_id) is None
    assert client.track("purchase", user_id) is None
    assert client.is_feature_enabled("banner", user_id) is False
    assert client.get_enabled_features(user_id) == []
    assert client.get_feature_variable("banner", "color", user_id) is None
    assert client.get_feature_variable_string("banner", "color", user_id) is None
    assert client.get_all_feature_variables("banner", user_id) is None
    assert client.set_forced_variation("checkout_test", user_id, "control") is False
    assert client.get_forced_variation("checkout_test", user_id) is None
    assert client.create_user_context(user_id) is None
    assert dispatcher.log_events == []
    assert set(_errors(sdk_log)) == {'Provided "user_id" is in an invalid format.'}


@pytest.mark.parametrize("attributes", BAD_ATTRIBUTES)
def test_non_dict_attributes_give_the_default(client, dispatcher, sdk_log, attributes):
    assert client.activate("checkout_test", "user-1", attributes) is None
    assert client.get_variation("checkout_test", "user-1", attributes) is None
    assert client.track("purchase", "user-1", attributes) is None
    assert client.is_feature_enabled("banner", "user-1", attributes) is False
    assert client.get_enabled_features("user-1", attributes) == []
    assert client.get_feature_variable_integer("banner", "count", "user-1", attributes) is None
    assert client.get_all_feature_variables("banner", "user-1", attributes) is None
    assert client.create_user_context("user-1", attributes) is None
    assert dispatcher.log_events == []


def test_track_with_non_dict_tags_sends_nothing(client, dispatcher, sdk_log):
    client.track("purchase", "user-1", {"age": 30}, ["revenue", 5])
    assert dispatcher.log_events == []
    assert _errors(sdk_log) == ["Provided event tags are in an invalid format."]


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, 2**53 + 1, 10**400, object(), [1], {"a": 1}, None, b"x"]
)
def test_unsendable_attribute_values_are_left_out_of_the_payload(client, dispatcher, value):
    assert client.activate("checkout_test", "vip", {"country": value, "age": 30}) == "treatment"
    attributes = dispatcher.log_events[0].params["visitors"][0]["attributes"]
    assert [a["key"] for a in attributes] == ["age", "$opt_bot_filtering"]


def test_unknown_keys_return_defaults(client, dispatcher):
    assert client.activate("no_such_experiment", "user-1") is None
    assert client.get_variation("no_such_experiment", "user-1") is None
    client.track("no_such_event", "user-1")
    assert client.is_feature_enabled("no_such_flag", "user-1") is False
    assert client.get_feature_variable("no_such_flag", "color", "user-1") is None
    assert client.get_feature_variable("banner", "no_such_variable", "user-1") is None
    assert client.get_all_feature_variables("no_such_flag", "user-1") is None
    assert client.set_forced_variation("no_such_experiment", "user-1", "control") is False
    assert client.set_forced_variation("checkout_test", "user-1", "no_such_variation") is False
    assert client.get_forced_variation("no_such_experiment", "user-1") is None
    user = client.create_user_context("user-1")
    decision = user.decide("no_such_flag")
    assert (decision.variation_key, decision.enabled, decision.flag_key) == (None, False, "no_such_flag")
    assert decision.reasons == ['No flag was found for key "no_such_flag".']
    assert dispatcher.log_events == []


def test_wrong_typed_getter_returns_none(client, sdk_log):
    assert client.get_feature_variable_boolean("banner", "color", "user-1") is None
    assert any("Requested variable type" in r.getMessage() for r in sdk_log.records)


def test_decide_with_bad_keys_and_options_never_raises(client):
    user = client.create_user_context("user-1", {"age": 30})
    assert user.decide(None).reasons == ['No flag was found for key "None".']
    assert user.decide(5).flag_key == 5
    assert user.decide("banner", options="INCLUDE_REASONS").flag_key == "banner"
    assert user.decide_for_keys("banner") == {}
    decisions = user.decide_for_keys([None, [], "banner"])
    assert set(decisions) == {None, "banner"}
    assert decisions[None].variation_key is None
    assert set(user.decide_all(options=[None, 5, "NOT_AN_OPTION"])) == {"banner", "empty_flag"}


@pytest.mark.parametrize(
    "datafile",
    [
        None,
        "",
        "{",
        "[]",
        "null",
        '{"version": "1"}',
        '{"version": "4"}',
        BASIC_DATAFILE[:500],
        42,
        b"\xff\xfe",
    ],
)
def test_a_bad_datafile_leaves_a_client_whose_calls_return_defaults(datafile, sdk_log):
    dispatcher = CapturingEventDispatcher()
    client = flagstream.Optimizely(datafile, event_processor=ForwardingEventProcessor(dispatcher))
    assert client.activate("checkout_test", "user-1") is None
    assert client.is_feature_enabled("banner", "user-1") is False
    assert client.get_enabled_features("user-1") == []
    client.track("purchase", "user-1")
    assert client.get_optimizely_config() is None
    user = client.create_user_context("user-1")
    assert user is not None
    assert user.decide("banner").reasons == ["Optimizely SDK not configured properly yet."]
    assert user.decide_all() == {}
    assert dispatcher.log_events == []
    assert _errors(sdk_log)
    client.close()


def test_a_raising_dispatcher_never_reaches_the_caller(sdk_log):
    class Broken:
        def dispatch_event(self, log_event):
            raise RuntimeError("network is down")

    client = flagstream.Optimizely(BASIC_DATAFILE, event_processor=ForwardingEventProcessor(Broken()))
    assert client.activate("checkout_test", "vip") == "treatment"
    client.track("purchase", "vip")
    client.close()


def test_a_raising_listener_never_reaches_the_caller(client):
    def boom(*args):
        raise ValueError("listener bug")

    for kind in (
        flagstream.NotificationTypes.ACTIVATE,
        flagstream.NotificationTypes.DECISION,
        flagstream.NotificationTypes.TRACK,
    ):
        client.notification_center.add_notification_listener(kind, boom)
    assert client.activate("checkout_test", "vip") == "treatment"
    client.track("purchase", "vip")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("event_dispatcher", object()),
        ("logger", "stdout"),
        ("error_handler", 5),
        ("user_profile_service", {}),
        ("config_manager", "manager"),
        ("notification_center", []),
        ("event_processor", object()),
        ("sdk_key", 123),
        ("default_decide_options", "INCLUDE_REASONS"),
        ("event_processor_options", [1]),
        ("event_endpoint", "logx.optimizely.com"),
    ],
)
def test_constructor_misuse_raises_a_clear_error(option, value):
    with pytest.raises(ConfigurationError) as info:
        flagstream.Optimizely(BASIC_DATAFILE, **{option: value})
    assert option.split("_")[0] in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unhashable_keys_in_context_and_notification_calls_never_raise(client, sdk_log):
    user = client.create_user_context("user-1")
    user.set_attribute(["not", "hashable"], 1)
    assert user.get_user_attributes() == {}
    center = client.notification_center
    assert center.add_notification_listener(["ACTIVATE"], print) == -1
    center.clear_notification_listeners({"type"})
    center.send_notifications([], 1)
    assert center.has_listeners([]) is False
    assert len(_errors(sdk_log)) == 4
