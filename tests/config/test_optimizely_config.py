"""OptimizelyConfig against optimizely-sdk's OptimizelyConfigService, field by field."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from datafile_gen import random_datafile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optimizely import logger as optimizely_logger
from optimizely import optimizely_config as oc
from optimizely import project_config as opc
from optimizely.optimizely import Optimizely

from flagstream.config.project_config import ProjectConfig
from flagstream.optimizely_config import (
    OptimizelyConfig,
    build_optimizely_config,
    describe_audience_conditions,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"


def plain(value: Any) -> Any:
    """Both SDKs' objects as plain data; dicts as item lists so that order counts too."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.name != "_datafile"}
        return {k: plain(v) for k, v in sorted(fields.items())}
    if hasattr(value, "__dict__") and not isinstance(value, type):
        fields = {k: v for k, v in vars(value).items() if k != "_datafile"}
        return {k: plain(v) for k, v in sorted(fields.items())}
    if isinstance(value, dict):
        return [(k, plain(v)) for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def theirs(text: str) -> Any:
    config = opc.ProjectConfig(text, optimizely_logger.NoOpLogger(), None)
    return oc.OptimizelyConfigService(config, optimizely_logger.NoOpLogger()).get_config()


def ours(text: str) -> OptimizelyConfig:
    built = build_optimizely_config(ProjectConfig.from_datafile(text))
    assert built is not None
    return built


def assert_same(text: str) -> None:
    expected, actual = theirs(text), ours(text)
    assert plain(actual) == plain(expected)
    assert actual.get_datafile() == expected.get_datafile() == text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), version=st.sampled_from(["2", "3", "4"]))
def test_generated_datafiles_are_described_as_optimizely_describes_them(seed: int, version: str):
    assert_same(json.dumps(random_datafile(seed, version)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32))
def test_reused_rule_keys_are_described_as_optimizely_describes_them(seed: int):
    datafile = random_datafile(seed, "4")
    rules = [rule for rollout in datafile.get("rollouts", []) for rule in rollout["experiments"]]
    experiments = datafile["experiments"] + [m for g in datafile["groups"] for m in g["experiments"]]
    for i, exp in enumerate(rules + experiments):
        exp["key"] = f"rule_{i % 2}"  # flag rules of different flags may share keys
    assert_same(json.dumps(datafile))


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.name)
def test_fixture_datafiles_are_described_as_optimizely_describes_them(path: Path):
    assert_same(path.read_text())


def test_feature_rollout_experiment_lists_the_everyone_else_variation():
    datafile = random_datafile(7, "4")
    datafile["rollouts"] = [
        {
            "id": "r1",
            "experiments": [
                {
                    "id": "ee",
                    "key": "everyone_else",
                    "status": "Running",
                    "layerId": "r1",
                    "audienceIds": [],
                    "forcedVariations": {},
                    "variations": [{"id": "ee_on", "key": "on", "featureEnabled": True, "variables": []}],
                    "trafficAllocation": [{"entityId": "ee_on", "endOfRange": 10000}],
                }
            ],
        }
    ]
    datafile["experiments"] = [
        {
            "id": "fr1",
            "key": "rollout_rule",
            "type": "fr",
            "status": "Running",
            "layerId": "l",
            "audienceIds": [],
            "forcedVariations": {},
            "variations": [{"id": "fr_on", "key": "fr_on", "featureEnabled": True}],
            "trafficAllocation": [{"entityId": "fr_on", "endOfRange": 5000}],
        }
    ]
    datafile["groups"] = []
    datafile["events"] = []
    datafile["featureFlags"] = [
        {"id": "f", "key": "flag", "experimentIds": ["fr1"], "rolloutId": "r1", "variables": []}
    ]
    text = json.dumps(datafile)
    assert list(ours(text).experiments_map["rollout_rule"].variations_map) == ["fr_on", "on"]
    assert_same(text)


def test_get_optimizely_config_matches_the_one_optimizely_client_returns():
    text = json.dumps(random_datafile(11, "4"))
    client = Optimizely(text)
    try:
        assert plain(ours(text)) == plain(client.get_optimizely_config())
    finally:
        client.close()


def test_objects_keep_a_dict_for_code_that_reads_them_with_vars():
    built = ours(json.dumps(random_datafile(2, "4")))
    assert vars(built)["revision"] == built.revision
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.revision = "x"  # type: ignore[misc]


def test_result_is_cached_per_config():
    config = ProjectConfig.from_datafile(json.dumps(random_datafile(3, "4")))
    assert build_optimizely_config(config) is build_optimizely_config(config)
    other = ProjectConfig.from_datafile(config.datafile)
    assert build_optimizely_config(other) is not build_optimizely_config(config)


def test_duplicate_experiment_keys_are_logged_like_optimizely(caplog: pytest.LogCaptureFixture):
    datafile = random_datafile(5, "3")
    datafile["experiments"] = [
        {
            "id": str(i),
            "key": "same",
            "status": "Running",
            "layerId": "l",
            "audienceIds": [],
            "forcedVariations": {},
            "variations": [],
            "trafficAllocation": [],
        }
        for i in (1, 2)
    ]
    datafile["featureFlags"] = []
    datafile["events"] = []
    datafile["groups"] = []
    with caplog.at_level(logging.WARNING, logger="flagstream"):
        built = ours(json.dumps(datafile))
    assert built.experiments_map["same"].id == "2"
    assert "Duplicate experiment keys found in datafile: same" in caplog.messages


# -- audience sentences ----------------------------------------------------------------------

_IDS = st.sampled_from(["1", "2", "3", "404", "and or", 'q"uote'])


def _describable(tree: Any) -> bool:
    if not isinstance(tree, list):
        return True
    if len(tree) == 1 and isinstance(tree[0], list):
        return False
    return all(_describable(child) for child in tree)


CONDITIONS = st.recursive(
    _IDS,
    lambda children: st.lists(st.one_of(st.sampled_from(["and", "or", "not"]), children), max_size=4),
    max_leaves=10,
).filter(lambda t: isinstance(t, list) and _describable(t))


SERVICE = oc.OptimizelyConfigService(
    opc.ProjectConfig(
        json.dumps({"version": "4", "revision": "1", "accountId": "1", "projectId": "1"}),
        optimizely_logger.NoOpLogger(),
        None,
    ),
    optimizely_logger.NoOpLogger(),
)


@settings(max_examples=300, deadline=None)
@given(conditions=CONDITIONS)
def test_audience_sentences_are_worded_as_optimizely_words_them(conditions: list[Any]):
    names = {"1": "us", "2": "adults", "3": "", "and or": "tricky"}
    assert describe_audience_conditions(conditions, names) == SERVICE.stringify_conditions(conditions, names)


@pytest.mark.parametrize(
    ("conditions", "sentence"),
    [
        ([], ""),
        (["1"], '"us"'),
        (["or", "1"], '"us"'),
        (["not", "1"], 'NOT "us"'),
        (["and", "1", "2"], '"us" AND "kids"'),
        (["or", "1", "2", "3"], '"us" OR "kids" OR "3"'),
        (["and", "1", ["or", "2", "3"]], '"us" AND ("kids" OR "3")'),
        (["and", ["or", "2", "3"], "1"], '("kids" OR "3") AND "us"'),
        (["not", ["or", "1", "2"]], 'NOT ("us" OR "kids")'),
        (None, ""),
    ],
)
def test_audience_sentence_examples(conditions: Any, sentence: str):
    assert describe_audience_conditions(conditions, {"1": "us", "2": "kids"}) == sentence
