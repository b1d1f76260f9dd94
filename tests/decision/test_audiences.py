"""Audience condition trees equal optimizely-sdk's three-valued evaluation."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest
from decision_helpers import OptimizelyUserStub, RecordingLogger
from hypothesis import given, settings
from hypothesis import strategies as st
from optimizely.helpers import condition as opt_condition
from optimizely.helpers import condition_tree_evaluator as opt_tree

from flagstream.decision._trace import Trace
from flagstream.decision.audiences import (
    AudienceTree,
    compile_audience_tree,
    compile_conditions,
    user_meets_audiences,
)

leaf_conditions = st.builds(
    lambda name, match, value: {"name": name, "type": "custom_attribute", "match": match, "value": value},
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["exact", "gt", "lt", "exists", "substring", "semver_ge", "bogus"]),
    st.one_of(st.integers(-3, 3), st.sampled_from(["x", "xy", "1.2.0", ""]), st.booleans(), st.none()),
)


def _trees(leaves: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.builds(
                lambda op, kids: [op, *kids],
                st.sampled_from(["and", "or", "not"]),
                st.lists(children, max_size=3),
            ),
            st.lists(children, min_size=1, max_size=3),  # implicit "or"
        ),
        max_leaves=8,
    )


attributes = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.one_of(
        st.integers(-3, 3),
        st.sampled_from(["x", "xyz", "1.3", "1.1.9"]),
        st.booleans(),
        st.none(),
        st.floats(),
    ),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(tree=_trees(leaf_conditions), attrs=attributes)
def test_condition_tree_equals_optimizely(tree: object, attrs: dict[str, object]) -> None:
    text = json.dumps(tree)
    structure, condition_list = opt_condition.loads(text)
    evaluator = opt_condition.CustomAttributeConditionEvaluator(
        condition_list, OptimizelyUserStub(attrs), RecordingLogger()
    )
    try:
        expected = opt_tree.evaluate(structure, evaluator.evaluate)
    except IndexError:
        return  # a nested empty list was reached: the reference raises, we say UNKNOWN there
    assert compile_conditions(json.loads(text))({**attrs}, Trace(RecordingLogger(), None)) == expected


@settings(max_examples=300, deadline=None)
@given(tree=_trees(st.sampled_from(["1", "2", "3", "404"])), attrs=attributes)
def test_audience_id_tree_equals_optimizely(tree: object, attrs: dict[str, object]) -> None:
    verdicts = {"1": True, "2": False, "3": None}

    def lookup(audience_id: object):
        if audience_id not in verdicts:
            return None
        return lambda a, t: verdicts[audience_id]  # type: ignore[index]

    try:
        expected = opt_tree.evaluate(tree, verdicts.get)  # type: ignore[arg-type]
    except IndexError:
        return  # a nested empty list was reached: the reference raises, we say UNKNOWN there
    assert compile_audience_tree(tree, lookup)(attrs, Trace(RecordingLogger(), None)) == expected


def _random_tree(rng: random.Random, depth: int, leaf: Callable[[], object]) -> object:
    if depth == 0 or rng.random() < 0.3:
        return leaf()
    kids = [_random_tree(rng, depth - 1, leaf) for _ in range(rng.randint(0, 3))]
    op = rng.choice(["and", "or", "not", "implicit"])
    return kids if op == "implicit" else [op, *kids]


def test_5000_random_condition_trees_equal_optimizely() -> None:
    rng = random.Random(5)

    def leaf() -> dict[str, object]:
        return {
            "name": rng.choice("abc"),
            "type": "custom_attribute",
            "match": rng.choice(["exact", "gt", "lt", "exists", "substring", "semver_ge", "bogus"]),
            "value": rng.choice([-1, 0, 2, "x", "xy", "1.2.0", "", True, None]),
        }

    for _ in range(5_000):
        tree = _random_tree(rng, 4, leaf)
        attrs = {
            k: rng.choice([-1, 0, 3, "x", "xyz", "1.3", True, None, 1.5])
            for k in rng.sample("abc", k=rng.randint(0, 3))
        }
        text = json.dumps(tree)
        structure, condition_list = opt_condition.loads(text)
        evaluator = opt_condition.CustomAttributeConditionEvaluator(
            condition_list, OptimizelyUserStub(attrs), RecordingLogger()
        )
        try:
            expected = opt_tree.evaluate(structure, evaluator.evaluate)
        except IndexError:
            continue  # an empty list was reached: the reference raises, we say UNKNOWN there
        assert compile_conditions(json.loads(text))(attrs, Trace(RecordingLogger(), None)) == expected, (
            tree,
            attrs,
        )


def test_5000_random_audience_id_trees_equal_optimizely() -> None:
    rng = random.Random(6)
    verdicts = {"1": True, "2": False, "3": None}

    def lookup(audience_id: object):
        if audience_id not in verdicts:
            return None
        return lambda a, t: verdicts[audience_id]  # type: ignore[index]

    for _ in range(5_000):
        tree = _random_tree(rng, 4, lambda: rng.choice(["1", "2", "3", "404"]))
        try:
            expected = opt_tree.evaluate(tree, verdicts.get)  # type: ignore[arg-type]
        except IndexError:
            continue  # an empty list was reached: the reference raises, we say UNKNOWN there
        assert compile_audience_tree(tree, lookup)({}, Trace(RecordingLogger(), None)) == expected, tree


def test_nested_empty_list_is_unknown_where_the_reference_raises() -> None:
    with pytest.raises(IndexError):
        opt_tree.evaluate(["and", []], lambda leaf: True)
    assert compile_audience_tree(["and", []], lambda _id: None)({}, Trace(RecordingLogger(), None)) is None


def test_not_without_operand_is_unknown() -> None:
    node = compile_conditions(["not"])
    assert node({}, Trace(RecordingLogger(), None)) is None


def test_unknown_inside_and_with_false_is_false() -> None:
    tree = [
        "and",
        {"name": "a", "type": "custom_attribute", "match": "exact", "value": 1},
        {"name": "b", "type": "custom_attribute", "match": "exact", "value": 1},
    ]
    assert compile_conditions(tree)({"b": 2}, Trace(RecordingLogger(), None)) is False
    assert compile_conditions(tree)({"b": 1}, Trace(RecordingLogger(), None)) is None


def test_object_inside_a_condition_value_is_numbered_like_the_reference() -> None:
    # optimizely's decoder turns every JSON object into its index, so a dict value becomes 0.
    tree = ["and", {"name": "a", "type": "custom_attribute", "match": "exact", "value": {"k": 1}}]
    _structure, condition_list = opt_condition.loads(json.dumps(tree))
    assert condition_list[1][1] == 0
    node = compile_conditions(tree)
    assert node({"a": 0}, Trace(RecordingLogger(), None)) is True


def test_no_audiences_means_everyone_with_reasons() -> None:
    reasons: list[str] = []
    tree = AudienceTree((), lambda _id: None)
    assert user_meets_audiences(tree, {}, Trace(RecordingLogger(), reasons), "exp", rule=False)
    assert reasons == [
        'Evaluating audiences for experiment "exp": [].',
        'Audiences for experiment "exp" collectively evaluated to TRUE.',
    ]


def test_unknown_audience_counts_as_not_meeting_with_rule_wording() -> None:
    reasons: list[str] = []
    log = RecordingLogger()
    tree = AudienceTree(["or", "404"], lambda _id: None)
    assert not user_meets_audiences(tree, {}, Trace(log, reasons), "Everyone Else", rule=True)
    assert reasons == [
        'Evaluating audiences for rule Everyone Else: ["or", "404"].',
        "Audiences for rule Everyone Else collectively evaluated to FALSE.",
    ]
