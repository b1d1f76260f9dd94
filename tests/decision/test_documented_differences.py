"""Each deliberate difference from optimizely-sdk 5.7, shown side by side (see docs/compatibility.md).

In every case but the last the reference raises out of the decision; flagstream
never raises from a decision and answers as described.
"""

from __future__ import annotations

import pytest
from decision_helpers import OptimizelyUserStub, RecordingLogger
from optimizely import bucketer as opt_bucketer
from optimizely.helpers import condition as opt_condition
from optimizely.helpers import condition_tree_evaluator as opt_tree
from oracle import Pair
from test_service import AB, _datafile

from flagstream.decision._trace import Trace
from flagstream.decision.audiences import compile_conditions
from flagstream.decision.bucketing import bucket_value
from flagstream.decision.conditions import compare_versions


def test_lone_surrogate_in_a_bucketing_key_is_hashed_where_the_reference_raises() -> None:
    with pytest.raises(UnicodeEncodeError):
        opt_bucketer.Bucketer()._generate_bucket_value("\udc80user1")
    assert bucket_value("\udc80user1") == bucket_value("\udc80user1")


def test_digit_suffix_against_word_target_suffix_is_unknown_where_the_reference_raises() -> None:
    evaluator = opt_condition.CustomAttributeConditionEvaluator([], OptimizelyUserStub({}), RecordingLogger())
    with pytest.raises(ValueError, match="invalid literal"):
        evaluator.compare_user_version_with_target_version("1.0.0-beta", "1.0.0-2")
    assert compare_versions("1.0.0-beta", "1.0.0-2") is None


def test_non_object_leaf_in_a_condition_tree_is_unknown_where_the_reference_raises() -> None:
    structure, conditions = opt_condition.loads('["and", "text"]')
    evaluator = opt_condition.CustomAttributeConditionEvaluator(
        conditions, OptimizelyUserStub({}), RecordingLogger()
    )
    with pytest.raises(TypeError):
        opt_tree.evaluate(structure, evaluator.evaluate)
    assert compile_conditions(["and", "text"])({}, Trace(RecordingLogger(), None)) is None


def test_malformed_stored_profile_is_ignored_where_the_reference_raises() -> None:
    profiles = {"u1": {"user_id": "u1", "experiment_bucket_map": ["not", "a", "dict"]}}
    pair = Pair(_datafile(experiments=[AB]), profiles)
    with pytest.raises(AttributeError):
        pair.variation("ab", "u1", {}, [])
    pair_ours_only = Pair(_datafile(experiments=[AB]), profiles)
    tracker = pair_ours_only.ours.new_user_profile_tracker("u1")
    config = pair_ours_only.config
    result = pair_ours_only.ours.get_variation(config, config.experiment_key_map["ab"], _User("u1"), tracker)
    assert result.variation is not None


def test_missing_stored_decision_is_a_debug_line_not_a_warning() -> None:
    their_log, our_log = RecordingLogger(), RecordingLogger()
    pair = Pair(_datafile(experiments=[AB]), {}, logger=our_log, opt_log=their_log)
    pair.variation("ab", "u1", {}, [])
    assert "User profile has invalid format." in their_log.messages("warning")
    assert "User profile has invalid format." not in our_log.messages("warning")
    assert "User profile has invalid format." in our_log.messages("debug")


class _User:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.attributes: dict[str, object] = {}

    def get_forced_decision_variation_key(self, flag_key: str, rule_key: str | None) -> str | None:
        return None
