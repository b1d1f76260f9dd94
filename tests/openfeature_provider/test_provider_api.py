"""FlagstreamProvider through OpenFeature's own client API: values, reasons, errors, track, hooks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from of_helpers import events_without_ids, failed_init, needs_tracking, set_provider_and_wait, user_with
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, Reason
from openfeature.hook import Hook, HookContext
from openfeature.provider import ProviderStatus
from openfeature.track import TrackingEventDetails

import flagstream
from flagstream.errors import ConfigurationError
from flagstream.openfeature import PROVIDER_NAME, FlagstreamProvider


@pytest.fixture
def of_client(client: flagstream.Optimizely) -> Any:
    set_provider_and_wait(FlagstreamProvider(client))
    return api.get_client()


def decide(twin: Any, user_id: str, flag: str = "banner", **attributes: Any) -> flagstream.OptimizelyDecision:
    user = twin[0].create_user_context(user_id, dict(attributes))
    return user.decide(flag)


def test_metadata_and_status_after_set_provider_and_wait(client):
    provider = FlagstreamProvider(client)
    set_provider_and_wait(provider)
    assert api.get_provider_metadata().name == PROVIDER_NAME == "flagstream"
    assert api.get_client().get_provider_status() == ProviderStatus.READY
    assert provider.status == ProviderStatus.READY


def test_boolean_of_a_flag_is_its_enabled_with_variant_reason_and_metadata(of_client, client, twin):
    user_id = user_with(client, "banner_feature_test")
    details = of_client.get_boolean_details("banner", False, EvaluationContext(user_id, {}))
    expected = decide(twin, user_id)
    assert details.value is expected.enabled
    assert details.variant == expected.variation_key
    assert details.reason == Reason.SPLIT
    assert details.error_code is None
    variation = {"off": "4021", "on": "4022"}[expected.variation_key]
    assert details.flag_metadata == {
        "flag_key": "banner",
        "rule_key": "banner_feature_test",
        "rule_id": "402",
        "variation_id": variation,
        "source": "feature-test",
        "enabled": expected.enabled,
        "revision": "42",
    }


@pytest.mark.parametrize(
    ("getter", "key", "default", "variable"),
    [
        ("get_boolean_details", "banner.show", False, "show"),
        ("get_string_details", "banner.color", "none", "color"),
        ("get_integer_details", "banner.count", -1, "count"),
        ("get_float_details", "banner.ratio", -1.0, "ratio"),
        ("get_float_details", "banner.count", -1.0, "count"),  # an integer variable read as a float
        ("get_object_details", "banner.config", {}, "config"),
        ("get_object_details", "banner.items", [], "items"),  # a json array
    ],
)
def test_every_value_type_reads_its_variable_as_decide_does(
    of_client, client, twin, getter, key, default, variable
):
    for rule in ("banner_feature_test", "de_rule", "everyone_else"):
        user_id = user_with(client, rule, country="de" if rule == "de_rule" else "fr")
        context = EvaluationContext(user_id, {"country": "de" if rule == "de_rule" else "fr"})
        details = getattr(of_client, getter)(key, default, context)
        expected = decide(twin, user_id, country=context.attributes["country"])
        assert details.error_code is None, details.error_message
        assert details.value == expected.variables[variable]
        assert type(details.value) is type(default)
        assert details.variant == expected.variation_key
        assert details.flag_metadata["rule_key"] == rule


def test_a_bare_flag_key_reads_its_only_variable_or_all_variables_as_an_object(of_client, twin):
    context = EvaluationContext("user_1")
    price = of_client.get_float_details("price", 0.0, context)
    assert (price.value, price.reason, price.variant) == (9.99, Reason.DEFAULT, None)
    assert price.flag_metadata == {
        "flag_key": "price",
        "enabled": False,
        "source": "rollout",
        "revision": "42",
    }
    everything = of_client.get_object_details("banner", {}, context)
    assert everything.value == decide(twin, "user_1").variables


def test_reasons_split_targeting_match_and_default(of_client, client):
    cases = [
        ("banner_feature_test", "fr", Reason.SPLIT),
        ("de_rule", "de", Reason.TARGETING_MATCH),
        ("everyone_else", "fr", Reason.DEFAULT),
        (None, "fr", Reason.DEFAULT),  # no rule at all: the flag is off for the user
    ]
    for rule, country, reason in cases:
        user_id = user_with(client, rule, country=country)
        details = of_client.get_boolean_details(
            "banner", True, EvaluationContext(user_id, {"country": country})
        )
        assert (details.reason, details.flag_metadata.get("rule_key")) == (reason, rule)
        if rule is None:
            assert details.variant is None
            assert details.value is False


def test_evaluations_send_the_impressions_user_decide_sends(of_client, client, dispatcher, twin):
    users = [
        user_with(client, r, country=c)
        for r, c in [("banner_feature_test", "fr"), ("de_rule", "de"), ("everyone_else", "fr")]
    ]
    dispatcher.clear()
    for user_id, country in zip(users, ["fr", "de", "fr"], strict=True):
        context = EvaluationContext(user_id, {"country": country, "age": 30})
        of_client.get_boolean_value("banner", False, context)
        of_client.get_string_value("banner.color", "", context)
        decide(twin, user_id, country=country, age=30)
        decide(twin, user_id, country=country, age=30)
    assert len(dispatcher.events()) == 6
    assert events_without_ids(dispatcher) == events_without_ids(twin[1])


@pytest.mark.parametrize(
    ("getter", "key", "default", "context", "code"),
    [
        ("get_boolean_details", "no_such_flag", True, EvaluationContext("u"), ErrorCode.FLAG_NOT_FOUND),
        (
            "get_string_details",
            "banner.no_such_variable",
            "d",
            EvaluationContext("u"),
            ErrorCode.FLAG_NOT_FOUND,
        ),
        ("get_string_details", "banner.count", "d", EvaluationContext("u"), ErrorCode.TYPE_MISMATCH),
        ("get_integer_details", "banner.ratio", 0, EvaluationContext("u"), ErrorCode.TYPE_MISMATCH),
        ("get_boolean_details", "banner.color", True, EvaluationContext("u"), ErrorCode.TYPE_MISMATCH),
        ("get_object_details", "banner.color", {}, EvaluationContext("u"), ErrorCode.TYPE_MISMATCH),
        ("get_string_details", "banner", "d", EvaluationContext("u"), ErrorCode.TYPE_MISMATCH),  # 7 variables
        ("get_string_details", "empty_flag", "d", EvaluationContext("u"), ErrorCode.TYPE_MISMATCH),  # none
        ("get_integer_details", "banner.broken", 7, EvaluationContext("u"), ErrorCode.PARSE_ERROR),
        ("get_boolean_details", "banner", True, EvaluationContext(), ErrorCode.TARGETING_KEY_MISSING),
        ("get_boolean_details", "banner", True, None, ErrorCode.TARGETING_KEY_MISSING),
        ("get_boolean_details", "banner", True, EvaluationContext(""), ErrorCode.TARGETING_KEY_MISSING),
        ("get_boolean_details", "banner", True, EvaluationContext(5), ErrorCode.INVALID_CONTEXT),  # type: ignore[arg-type]
    ],
)
def test_error_codes_return_the_default_with_reason_error(
    of_client, dispatcher, getter, key, default, context, code
):
    details = getattr(of_client, getter)(key, default, context)
    assert (details.value, details.reason, details.error_code) == (default, Reason.ERROR, code)
    assert details.error_message
    # Only a PARSE_ERROR comes after the decision: its impression is sent, as user.decide sends it.
    assert len(dispatcher.events()) == (1 if code == ErrorCode.PARSE_ERROR else 0)


def test_provider_not_ready_without_a_datafile_and_general_when_the_config_manager_raises():
    class Broken:
        def get_config(self) -> Any:
            raise RuntimeError("config store is down")

    no_datafile = flagstream.Optimizely(datafile='{"version": "4"}')  # invalid: no config at all
    provider = FlagstreamProvider(no_datafile)
    details = provider.resolve_boolean_details("banner", True, EvaluationContext("u"))
    assert (details.value, details.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)
    with failed_init():
        set_provider_and_wait(provider)
    assert api.get_client().get_boolean_details("banner", True, EvaluationContext("u")).error_code == (
        ErrorCode.PROVIDER_NOT_READY
    )

    broken = flagstream.Optimizely(config_manager=Broken())
    details = FlagstreamProvider(broken).resolve_string_details("banner.color", "d", EvaluationContext("u"))
    assert (details.value, details.error_code, details.reason) == ("d", ErrorCode.GENERAL, Reason.ERROR)
    assert "config store is down" in (details.error_message or "")
    no_datafile.close()
    broken.close()


def test_async_evaluations_give_the_sync_answers(of_client, client):
    user_id = user_with(client, "de_rule", country="de")
    context = EvaluationContext(user_id, {"country": "de"})

    async def evaluate() -> list[FlagEvaluationDetails[Any]]:
        return [
            await of_client.get_boolean_details_async("banner", False, context),
            await of_client.get_string_details_async("banner.color", "", context),
            await of_client.get_integer_details_async("banner.count", 0, context),
            await of_client.get_float_details_async("banner.ratio", 0.0, context),
            await of_client.get_object_details_async("banner.config", {}, context),
            await of_client.get_boolean_details_async("nope", True, context),
        ]

    got = asyncio.run(evaluate())
    expected = [
        of_client.get_boolean_details("banner", False, context),
        of_client.get_string_details("banner.color", "", context),
        of_client.get_integer_details("banner.count", 0, context),
        of_client.get_float_details("banner.ratio", 0.0, context),
        of_client.get_object_details("banner.config", {}, context),
        of_client.get_boolean_details("nope", True, context),
    ]
    assert [(d.value, d.variant, d.reason, d.error_code) for d in got] == [
        (d.value, d.variant, d.reason, d.error_code) for d in expected
    ]


@needs_tracking
def test_track_is_track_event_with_value_and_attributes_as_tags(of_client, dispatcher):
    api.set_evaluation_context(EvaluationContext(attributes={"country": "de"}))
    of_client.track(
        "purchase", EvaluationContext("buyer", {"age": 40}), TrackingEventDetails(12.5, {"sku": "A1"})
    )
    of_client.track("signup", EvaluationContext("buyer"))
    of_client.track("purchase")  # no targeting key: logged, nothing sent
    events = dispatcher.events()
    assert [(e["key"], e["visitor_id"]) for e in events] == [("purchase", "buyer"), ("signup", "buyer")]
    assert events[0]["tags"] == {"sku": "A1", "value": 12.5}
    assert events[0]["value"] == 12.5
    assert "tags" not in events[1] or not events[1]["tags"]
    visitor = dispatcher.log_events[0].params["visitors"][0]
    assert {a["key"]: a["value"] for a in visitor["attributes"] if not a["key"].startswith("$")} == {
        "country": "de",
        "age": 40,
    }


@needs_tracking
def test_track_value_as_revenue_for_whole_cents(client, dispatcher):
    set_provider_and_wait(FlagstreamProvider(client, value_tag="revenue"))
    of_client = api.get_client()
    of_client.track("purchase", EvaluationContext("buyer"), TrackingEventDetails(4200.0))
    of_client.track("purchase", EvaluationContext("buyer"), TrackingEventDetails(0.5))
    whole, fraction = dispatcher.events()
    assert (whole["tags"], whole["revenue"]) == ({"revenue": 4200}, 4200)
    assert fraction["tags"] == {"value": 0.5}
    assert "revenue" not in fraction


class Recorder(Hook):
    def __init__(self, name: str, calls: list[tuple[str, str, str]]) -> None:
        self.name = name
        self.calls = calls

    def before(self, hook_context: HookContext, hints: Any) -> EvaluationContext | None:
        self.calls.append((self.name, "before", hook_context.flag_key))
        return EvaluationContext(attributes={"country": "de"}) if self.name == "invocation" else None

    def after(self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: Any) -> None:
        self.calls.append((self.name, "after", str(details.reason)))

    def error(self, hook_context: HookContext, exception: Exception, hints: Any) -> None:
        self.calls.append((self.name, "error", type(exception).__name__))

    def finally_after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: Any
    ) -> None:
        self.calls.append((self.name, "finally", str(details.error_code)))


def test_hooks_of_the_api_client_invocation_and_provider_are_called(client):
    from openfeature.flag_evaluation import FlagEvaluationOptions

    calls: list[tuple[str, str, str]] = []
    set_provider_and_wait(FlagstreamProvider(client, hooks=[Recorder("provider", calls)]))
    api.add_hooks([Recorder("api", calls)])
    of_client = api.get_client()
    of_client.add_hooks([Recorder("client", calls)])
    options = FlagEvaluationOptions(hooks=[Recorder("invocation", calls)])
    user_id = user_with(client, "de_rule", country="de")
    # The invocation hook's before() adds country=de, so the targeted delivery rule matches.
    details = of_client.get_boolean_details("banner", False, EvaluationContext(user_id), options)
    assert details.reason == Reason.TARGETING_MATCH
    order = ["api", "client", "invocation", "provider"]
    assert calls[:4] == [(n, "before", "banner") for n in order]
    assert calls[4:8] == [(n, "after", "TARGETING_MATCH") for n in reversed(order)]
    assert calls[8:] == [(n, "finally", "None") for n in reversed(order)]
    calls.clear()
    of_client.get_boolean_details("missing", False, EvaluationContext(user_id), options)
    assert [c for c in calls if c[1] == "error"] == [
        (n, "error", "FlagNotFoundError") for n in reversed(order)
    ]


@needs_tracking
def test_shutdown_closes_the_client_and_delivers_queued_events():
    from flagstream.collector import Collector

    with Collector() as collector:
        import json

        from of_helpers import datafile

        client = flagstream.Optimizely(json.dumps(datafile()), event_endpoint=collector.events_url)
        set_provider_and_wait(FlagstreamProvider(client, shutdown_timeout=5.0))
        of_client = api.get_client()
        for n in range(25):
            of_client.get_boolean_value("banner", False, EvaluationContext(f"user_{n}"))
        of_client.track("purchase", EvaluationContext("user_1"))
        api.shutdown()
        assert collector.event_count() >= 26  # 25 impressions (sendFlagDecisions) and one conversion
        assert client.event_processor.stats().queued_events == 0
        assert client._closed


def test_constructor_misuse_raises_configuration_error(client):
    with pytest.raises(ConfigurationError):
        FlagstreamProvider(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        FlagstreamProvider(client, value_tag="price")
    with pytest.raises(ConfigurationError):
        FlagstreamProvider(client, stale_after=0)
    with pytest.raises(ConfigurationError):
        FlagstreamProvider(client, shutdown_timeout="5")  # type: ignore[arg-type]
