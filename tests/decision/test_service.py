"""The decision service, behaviour by behaviour, on small hand-written datafiles."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from decision_helpers import RecordingLogger
from oracle import Pair, RecordingProfiles, User

from flagstream.config.project_config import ProjectConfig
from flagstream.decision import DecideOption, DecisionService, SimpleUser

REASONS = [DecideOption.INCLUDE_REASONS]


def _variation(vid: str, key: str, enabled: bool = True) -> dict[str, Any]:
    return {"id": vid, "key": key, "featureEnabled": enabled, "variables": []}


def _experiment(
    eid: str, key: str, variations: list[dict[str, Any]], ends: list[int], **extra: Any
) -> dict[str, Any]:
    exp = {
        "id": eid,
        "key": key,
        "status": "Running",
        "layerId": f"L{eid}",
        "audienceIds": [],
        "forcedVariations": {},
        "variations": variations,
        "trafficAllocation": [
            {"entityId": v["id"], "endOfRange": end} for v, end in zip(variations, ends, strict=True)
        ],
    }
    exp.update(extra)
    return exp


def _datafile(**sections: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": "4",
        "accountId": "1",
        "projectId": "2",
        "revision": "3",
        "attributes": [{"id": "100", "key": "age"}, {"id": "101", "key": "country"}],
        "audiences": [
            {
                "id": "500",
                "name": "adults",
                "conditions": '["and", ["or", ["or", {"name": "age", "type": "custom_attribute", "match": "ge", "value": 18}]]]',
            }
        ],
        "typedAudiences": [],
        "experiments": [],
        "groups": [],
        "featureFlags": [],
        "rollouts": [],
        "events": [],
    }
    base.update(sections)
    return base


AB = _experiment("10", "ab", [_variation("11", "a"), _variation("12", "b")], [5000, 10000])
FLAG_DATAFILE = _datafile(
    experiments=[
        _experiment(
            "20",
            "test",
            [_variation("21", "on"), _variation("22", "off", False)],
            [5000, 10000],
            audienceIds=["500"],
        ),
    ],
    rollouts=[
        {
            "id": "30",
            "experiments": [
                _experiment("31", "rule1", [_variation("32", "r1")], [0], audienceIds=["500"]),
                _experiment("33", "rule2", [_variation("34", "r2")], [10000], audienceIds=["500"]),
                _experiment("35", "everyone", [_variation("36", "ee", False)], [10000]),
            ],
        }
    ],
    featureFlags=[{"id": "40", "key": "flag", "experimentIds": ["20"], "rolloutId": "30", "variables": []}],
)


def _config(datafile: dict[str, Any]) -> ProjectConfig:
    return ProjectConfig.from_datafile(copy.deepcopy(datafile), skip_json_validation=True)


def _flag(service: DecisionService, config: ProjectConfig, user: Any, options: Any = REASONS) -> Any:
    return service.get_variation_for_feature(config, config.feature_key_map["flag"], user, options)


# -- experiments -------------------------------------------------------------------------------


def test_experiment_that_is_not_running_buckets_nobody() -> None:
    config = _config(_datafile(experiments=[{**AB, "status": "Paused"}]))
    result = DecisionService().get_variation(
        config, config.experiment_key_map["ab"], SimpleUser("u1"), options=REASONS
    )
    assert result.variation is None
    assert result.reasons == ['Experiment "ab" is not running.']


def test_whitelisted_user_gets_the_forced_variation_before_audiences() -> None:
    exp = {**AB, "forcedVariations": {"vip": "b"}, "audienceIds": ["500"]}
    config = _config(_datafile(experiments=[exp]))
    result = DecisionService().get_variation(
        config, config.experiment_key_map["ab"], SimpleUser("vip"), options=REASONS
    )
    assert result.variation is not None
    assert result.variation.key == "b"
    assert result.reasons == ['User "vip" is forced in variation "b".']


def test_whitelisting_with_an_unknown_variation_key_falls_through_to_bucketing() -> None:
    exp = {**AB, "forcedVariations": {"vip": "nope"}}
    config = _config(_datafile(experiments=[exp]))
    log = RecordingLogger()
    result = DecisionService(log).get_variation(config, config.experiment_key_map["ab"], SimpleUser("vip"))
    assert result.variation is not None
    assert 'Variation key "nope" is not in datafile.' in log.messages("error")


def test_user_outside_the_audience_is_not_bucketed() -> None:
    config = _config(_datafile(experiments=[{**AB, "audienceIds": ["500"]}]))
    result = DecisionService().get_variation(
        config, config.experiment_key_map["ab"], SimpleUser("u1", {"age": 12}), options=REASONS
    )
    assert result.variation is None
    assert result.reasons[-1] == 'User "u1" does not meet conditions to be in experiment "ab".'


def test_bucketing_id_attribute_replaces_the_user_id_for_bucketing() -> None:
    config = _config(_datafile(experiments=[AB]))
    service = DecisionService()
    exp = config.experiment_key_map["ab"]
    by_bucketing_id = {
        service.get_variation(config, exp, SimpleUser(f"u{i}", {"$opt_bucketing_id": "same"})).variation.key  # type: ignore[union-attr]
        for i in range(50)
    }
    by_user_id = {service.get_variation(config, exp, SimpleUser(f"u{i}")).variation.key for i in range(50)}  # type: ignore[union-attr]
    assert len(by_bucketing_id) == 1
    assert len(by_user_id) == 2


def test_non_string_bucketing_id_warns_and_uses_the_user_id() -> None:
    config = _config(_datafile(experiments=[AB]))
    log = RecordingLogger()
    service = DecisionService(log)
    exp = config.experiment_key_map["ab"]
    with_bad = service.get_variation(
        config, exp, SimpleUser("u7", {"$opt_bucketing_id": 42}), options=REASONS
    )
    plain = service.get_variation(config, exp, SimpleUser("u7"))
    assert with_bad.variation == plain.variation
    assert "Bucketing ID attribute is not a string. Defaulted to user_id." in with_bad.reasons
    assert "Bucketing ID attribute is not a string. Defaulted to user_id." in log.messages("warning")


def test_mutually_exclusive_group_puts_a_user_in_at_most_one_experiment() -> None:
    members = [
        _experiment("61", "g1", [_variation("62", "x")], [10000]),
        _experiment("63", "g2", [_variation("64", "y")], [10000]),
    ]
    group = {
        "id": "60",
        "policy": "random",
        "experiments": members,
        "trafficAllocation": [
            {"entityId": "61", "endOfRange": 3000},
            {"entityId": "", "endOfRange": 5000},
            {"entityId": "63", "endOfRange": 10000},
        ],
    }
    config = _config(_datafile(groups=[group]))
    service = DecisionService()
    counts = {0: 0, 1: 0}
    for i in range(2000):
        user = SimpleUser(f"user{i}")
        hits = [
            service.get_variation(config, config.experiment_key_map[k], user).variation for k in ("g1", "g2")
        ]
        counts[sum(h is not None for h in hits)] += 1
    assert set(counts) == {0, 1}
    assert 300 < counts[0] < 500  # the 20% empty slice of the group


# -- forced variations -------------------------------------------------------------------------


def test_forced_variation_is_set_read_and_cleared() -> None:
    config = _config(_datafile(experiments=[AB]))
    service = DecisionService()
    assert service.set_forced_variation(config, "ab", "u1", "b")
    variation, reasons = service.get_forced_variation(config, "ab", "u1")
    assert variation is not None
    assert variation.key == "b"
    assert reasons == ['Variation "b" is mapped to experiment "ab" and user "u1" in the forced variation map']
    result = service.get_variation(config, config.experiment_key_map["ab"], SimpleUser("u1"))
    assert result.variation is not None
    assert result.variation.key == "b"
    assert service.set_forced_variation(config, "ab", "u1", None)
    assert service.get_forced_variation(config, "ab", "u1") == (None, [])


def test_forced_variation_rejects_unknown_keys() -> None:
    config = _config(_datafile(experiments=[AB]))
    service = DecisionService()
    assert not service.set_forced_variation(config, "nope", "u1", "b")
    assert not service.set_forced_variation(config, "ab", "u1", "nope")
    assert not service.set_forced_variation(config, "ab", "u1", "")


def test_forced_variations_are_safe_to_set_from_many_threads() -> None:
    config = _config(_datafile(experiments=[AB]))
    service = DecisionService()
    start = threading.Event()

    def work(n: int) -> None:
        start.wait(5)
        for i in range(300):
            service.set_forced_variation(config, "ab", f"u{n}-{i}", "a" if i % 2 else "b")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(10)
    for n in range(4):
        for i in range(300):
            variation, _ = service.get_forced_variation(config, "ab", f"u{n}-{i}")
            assert variation is not None
            assert variation.key == ("a" if i % 2 else "b")


# -- user profiles -----------------------------------------------------------------------------


def test_stored_profile_wins_over_bucketing_and_is_not_saved_again() -> None:
    config = _config(_datafile(experiments=[AB]))
    ups = RecordingProfiles(
        {"u1": {"user_id": "u1", "experiment_bucket_map": {"10": {"variation_id": "12"}}}}
    )
    service = DecisionService(user_profile_service=ups)
    tracker = service.new_user_profile_tracker("u1")
    result = service.get_variation(
        config, config.experiment_key_map["ab"], SimpleUser("u1"), tracker, REASONS
    )
    assert tracker is not None
    tracker.save()
    assert result.variation is not None
    assert result.variation.key == "b"
    assert result.reasons == [
        'Returning previously activated variation ID "b" of experiment "ab" for user "u1" from user profile.'
    ]
    assert ups.calls == [("lookup", "u1")]


def test_feature_list_looks_the_profile_up_once_and_saves_once() -> None:
    flags = [
        {"id": str(40 + i), "key": f"f{i}", "experimentIds": [str(20 + i)], "rolloutId": "", "variables": []}
        for i in range(3)
    ]
    exps = [_experiment(str(20 + i), f"e{i}", [_variation(str(70 + i), f"v{i}")], [10000]) for i in range(3)]
    config = _config(_datafile(experiments=exps, featureFlags=flags))
    ups = RecordingProfiles()
    service = DecisionService(user_profile_service=ups)
    decisions = service.get_variations_for_feature_list(
        config, list(config.feature_key_map.values()), SimpleUser("u1")
    )
    assert [d.variation.key for d in decisions if d.variation] == ["v0", "v1", "v2"]
    assert ups.calls == [
        ("lookup", "u1"),
        (
            "save",
            {
                "user_id": "u1",
                "experiment_bucket_map": {
                    "20": {"variation_id": "70"},
                    "21": {"variation_id": "71"},
                    "22": {"variation_id": "72"},
                },
            },
        ),
    ]


def test_ignore_user_profile_service_neither_reads_nor_writes() -> None:
    config = _config(FLAG_DATAFILE)
    ups = RecordingProfiles()
    service = DecisionService(user_profile_service=ups)
    _flag(service, config, SimpleUser("u1", {"age": 30}), [DecideOption.IGNORE_USER_PROFILE_SERVICE])
    assert ups.calls == []


class _BrokenProfiles:
    def __init__(
        self, lookup_result: Any = None, lookup_raises: bool = False, save_raises: bool = False
    ) -> None:
        self.lookup_result = lookup_result
        self.lookup_raises = lookup_raises
        self.save_raises = save_raises

    def lookup(self, user_id: str) -> Any:
        if self.lookup_raises:
            raise RuntimeError("lookup down")
        return self.lookup_result

    def save(self, profile: Any) -> None:
        if self.save_raises:
            raise RuntimeError("save down")


@pytest.mark.parametrize(
    "ups",
    [
        _BrokenProfiles(lookup_raises=True),
        _BrokenProfiles(save_raises=True),
        _BrokenProfiles(lookup_result=42),
        _BrokenProfiles(lookup_result="user_id experiment_bucket_map"),
        _BrokenProfiles(lookup_result={"user_id": "u1", "experiment_bucket_map": [1, 2]}),
        _BrokenProfiles(lookup_result={"user_id": "u1", "experiment_bucket_map": {"20": "not a dict"}}),
        _BrokenProfiles(
            lookup_result={"user_id": "u1", "experiment_bucket_map": {"20": {"variation_id": ["x"]}}}
        ),
        _BrokenProfiles(lookup_result={"user_id": "u1"}),
    ],
)
def test_broken_user_profile_service_never_breaks_a_decision(ups: _BrokenProfiles) -> None:
    config = _config(FLAG_DATAFILE)
    log = RecordingLogger()
    service = DecisionService(log, ups)  # type: ignore[arg-type]
    decision = _flag(service, config, SimpleUser("u1", {"age": 30}))
    reference = _flag(DecisionService(), config, SimpleUser("u1", {"age": 30}))
    assert (decision.experiment, decision.variation) == (reference.experiment, reference.variation)


# -- flags -------------------------------------------------------------------------------------


def test_targeted_rule_miss_skips_to_everyone_else() -> None:
    config = _config(FLAG_DATAFILE)
    decision = _flag(DecisionService(), config, SimpleUser("u1", {"age": 30, "$opt_bucketing_id": "b"}))
    assert decision.source in ("feature-test", "rollout")
    if decision.source == "rollout":
        assert decision.experiment.key == "everyone"
        assert (
            'User "u1" not bucketed into a targeting rule 1. Checking "Everyone Else" rule now.'
            in decision.reasons
        )
        assert not any("rule 2" in r for r in decision.reasons)


def test_flag_falls_back_to_everyone_else_when_no_audience_matches() -> None:
    config = _config(FLAG_DATAFILE)
    decision = _flag(DecisionService(), config, SimpleUser("u1", {"age": 3}))
    assert decision.source == "rollout"
    assert decision.experiment.key == "everyone"
    assert decision.reasons[-1] == 'User "u1" bucketed into a targeting rule Everyone Else.'


def test_reasons_are_empty_unless_requested() -> None:
    config = _config(FLAG_DATAFILE)
    decision = _flag(DecisionService(), config, SimpleUser("u1", {"age": 30}), options=())
    assert decision.reasons == []


def test_flag_level_forced_decision_is_validated_against_the_flag_variations() -> None:
    config = _config(FLAG_DATAFILE)
    service = DecisionService()
    good = User("u1", {}, {("flag", None): "r2"})
    variation, reasons = service.find_validated_forced_decision(config, "flag", None, good)
    assert variation is not None
    assert variation.key == "r2"
    assert reasons == ["Variation (r2) is mapped to flag (flag) and user (u1) in the forced decision map."]
    bad = User("u1", {}, {("flag", "rule1"): "missing"})
    assert service.find_validated_forced_decision(config, "flag", "rule1", bad) == (
        None,
        [
            "Invalid variation is mapped to flag (flag), rule (rule1) and user (u1) in the forced decision map."
        ],
    )


def test_rule_level_forced_decision_decides_the_rule() -> None:
    config = _config(FLAG_DATAFILE)
    user = User("u1", {}, {("flag", "rule2"): "r2"})
    decision = _flag(DecisionService(), config, user)
    assert (decision.experiment.key, decision.variation.key, decision.source) == ("rule2", "r2", "rollout")


def _holdout(hid: str, key: str, end: int = 10000, **extra: Any) -> dict[str, Any]:
    return {
        "id": hid,
        "key": key,
        "status": "Running",
        "audienceIds": [],
        "variations": [_variation(f"{hid}1", f"{key}_off", False)],
        "trafficAllocation": [{"entityId": f"{hid}1", "endOfRange": end}],
        **extra,
    }


def test_global_holdout_decides_the_flag() -> None:
    config = _config({**FLAG_DATAFILE, "holdouts": [_holdout("90", "hold")]})
    decision = _flag(DecisionService(), config, SimpleUser("u1", {"age": 30}))
    assert (decision.experiment.key, decision.source) == ("hold", "holdout")
    assert decision.reasons[-1] == "The user 'u1' is bucketed into holdout 'hold' for feature flag 'flag'."


def test_holdout_excluding_targeted_deliveries_rides_along_with_the_rollout_decision() -> None:
    config = _config({**FLAG_DATAFILE, "holdouts": [_holdout("90", "hold", excludeTargetedDeliveries=True)]})
    decision = _flag(DecisionService(), config, SimpleUser("u1", {"age": 3}))
    assert decision.source == "rollout"
    assert decision.holdout_decision is not None
    assert decision.holdout_decision.experiment.key == "hold"
    assert (
        'Holdout "hold" has excludeTargetedDeliveries enabled, continuing to rollout evaluation.'
        in decision.reasons
    )


def test_local_holdout_applies_only_to_its_rules() -> None:
    config = _config({**FLAG_DATAFILE, "localHoldouts": [_holdout("91", "local", includedRules=["35"])]})
    decision = _flag(DecisionService(), config, SimpleUser("u1", {"age": 3}))
    assert (decision.experiment.key, decision.source) == ("local", "holdout")
    assert (
        decision.reasons[-1]
        == "The user 'u1' is bucketed into local holdout 'local' for delivery rule 'everyone'."
    )


def test_feature_rollout_experiment_sends_the_rest_to_the_everyone_else_variation() -> None:
    fr = _experiment("20", "test", [_variation("21", "on")], [0], type="fr")
    config = _config({**FLAG_DATAFILE, "experiments": [fr]})
    decision = _flag(DecisionService(), config, SimpleUser("u1", {"age": 30}))
    assert (decision.experiment.key, decision.variation.key, decision.source) == (
        "test",
        "ee",
        "feature-test",
    )


# -- bad input ---------------------------------------------------------------------------------


class _NoId:
    """A duck-typed user whose id is None (the compiled SimpleUser refuses to be one)."""

    user_id = None
    attributes = {"age": 30}

    def get_forced_decision_variation_key(self, flag_key: str, rule_key: str | None) -> str | None:
        return None

    def has_forced_decisions(self) -> bool:
        return False


class _Weird:
    user_id = None
    attributes = "not a mapping"

    def get_forced_decision_variation_key(self, flag_key: str, rule_key: str | None) -> str | None:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    "user",
    [
        _NoId(),
        SimpleUser("u", ["age", 30]),  # type: ignore[arg-type]
        SimpleUser("u", {"age": [30], "country": {"x": 1}, "$opt_bucketing_id": object()}),
        SimpleUser("\ud800", {"age": float("nan")}),
        _Weird(),
        object(),
    ],
)
def test_bad_users_never_raise(user: Any) -> None:
    config = _config({**FLAG_DATAFILE, "holdouts": [_holdout("90", "hold", end=100)]})
    service = DecisionService(user_profile_service=RecordingProfiles())
    decision = _flag(service, config, user)
    assert decision.source in ("rollout", "holdout", "feature-test")
    service.get_variation(
        config, config.experiment_key_map["test"], user, service.new_user_profile_tracker("x")
    )
    service.find_validated_forced_decision(config, "flag", None, user)


def test_bad_options_are_ignored() -> None:
    config = _config(FLAG_DATAFILE)
    for options in (None, 5, "INCLUDE_REASONS", [["x"]]):
        _flag(DecisionService(), config, SimpleUser("u1"), options)


def test_decisions_equal_optimizely_on_the_hand_written_datafile() -> None:
    datafile = {
        **FLAG_DATAFILE,
        "holdouts": [_holdout("90", "hold", end=2000, excludeTargetedDeliveries=True)],
        "localHoldouts": [_holdout("91", "local", end=3000, includedRules=["20", "35"])],
    }
    pair = Pair(datafile, {})
    for i in range(300):
        attrs = {"age": i % 40, "$opt_bucketing_id": f"b{i % 7}"} if i % 3 else {"age": str(i)}
        theirs, ours = pair.flags(f"user{i}", attrs, {}, ["flag"], ["INCLUDE_REASONS"])
        assert ours == theirs


# -- concurrency and config updates ------------------------------------------------------------


def test_concurrent_first_decisions_on_a_new_config_agree_with_sequential_ones() -> None:
    datafile = {**FLAG_DATAFILE, "holdouts": [_holdout("90", "hold", end=1500)]}
    users = [SimpleUser(f"user{i}", {"age": i % 40}) for i in range(400)]
    expected = [
        (d.experiment.key if d.experiment else None, d.variation.key if d.variation else None)
        for d in (_flag(DecisionService(), _config(datafile), u, ()) for u in users)
    ]
    config = _config(datafile)
    service = DecisionService()
    start = threading.Event()
    results: dict[int, list[tuple[Any, Any]]] = {}

    def work(n: int) -> None:
        start.wait(5)
        out = []
        for u in users:
            d = _flag(service, config, u, ())
            out.append((d.experiment.key if d.experiment else None, d.variation.key if d.variation else None))
        results[n] = out

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(30)
    assert [results[n] for n in range(4)] == [expected] * 4


def test_new_config_gets_a_new_plan_and_forced_variations_survive_it() -> None:
    service = DecisionService()
    old = _config(_datafile(experiments=[AB]))
    assert service.set_forced_variation(old, "ab", "u1", "a")
    renamed = copy.deepcopy(AB)
    renamed["variations"][0]["key"] = "renamed"
    new = _config(_datafile(experiments=[renamed]))
    assert service.plan(new) is not service.plan(old)
    variation, _ = service.get_forced_variation(new, "ab", "u1")
    assert variation is not None
    assert variation.key == "renamed"


def test_legacy_condition_string_with_infinity_still_evaluates_its_other_leaves() -> None:
    audience = {
        "id": "501",
        "name": "odd",
        "conditions": '["or", {"name": "age", "type": "custom_attribute", "match": "ge", "value": 18},'
        ' {"name": "age", "type": "custom_attribute", "match": "lt", "value": Infinity}]',
    }
    datafile = _datafile(audiences=[audience], experiments=[{**AB, "audienceIds": ["501"]}])
    pair = Pair(datafile)
    theirs, ours = pair.variation("ab", "u1", {"age": 30}, ["INCLUDE_REASONS"])
    assert theirs[0] is not None
    assert ours == theirs


def test_prepare_compiles_a_config_up_front_and_decisions_stay_the_same() -> None:
    config = _config({**FLAG_DATAFILE, "holdouts": [_holdout("90", "hold", end=1500)]})
    prepared, lazy = DecisionService(), DecisionService()
    prepared.prepare(config)
    assert prepared.plan(config)._flags  # compiled before any decision
    for i in range(200):
        user = SimpleUser(f"user{i}", {"age": i % 40})
        assert _flag(prepared, config, user) == _flag(lazy, config, user)


def test_prepare_never_raises_on_a_broken_config() -> None:
    DecisionService().prepare(None)  # type: ignore[arg-type]


def test_holdout_excluding_targeted_deliveries_still_evaluates_td_experiments_only() -> None:
    ab_test = _experiment("20", "test", [_variation("21", "on")], [10000])
    td = _experiment("25", "delivery", [_variation("26", "td_on")], [10000], type="td")
    flag = {"id": "40", "key": "flag", "experimentIds": ["20", "25"], "rolloutId": "30", "variables": []}
    datafile = {
        **FLAG_DATAFILE,
        "experiments": [ab_test, td],
        "featureFlags": [flag],
        "holdouts": [_holdout("90", "hold", excludeTargetedDeliveries=True)],
    }
    decision = _flag(DecisionService(), _config(datafile), SimpleUser("u1", {"age": 30}))
    assert (decision.experiment.key, decision.variation.key, decision.source) == (
        "delivery",
        "td_on",
        "feature-test",
    )
    assert decision.holdout_decision is not None
    assert not any('experiment "test"' in r for r in decision.reasons)
    assert Pair(datafile).flags("u1", {"age": 30}, {}, ["flag"], REASONS)[0] == [
        ("delivery", "td_on", "feature-test", decision.reasons, ("hold", "hold_off", "holdout"))
    ]
