from __future__ import annotations

from pathlib import Path

import pytest

from flagstream.config.entities import VariableType
from flagstream.config.project_config import ProjectConfig
from flagstream.errors import InvalidDatafileError, UnsupportedDatafileVersionError

BASIC = (Path(__file__).parent.parent / "fixtures" / "basic_datafile.json").read_text()


@pytest.fixture
def config() -> ProjectConfig:
    return ProjectConfig.from_datafile(BASIC)


def test_experiments_rollout_rules_and_group_members_are_all_indexed(config):
    assert set(config.experiment_key_map) == {
        "checkout_test",
        "banner_feature_test",
        "de_rule",
        "everyone_else",
        "group_exp_a",
        "group_exp_b",
    }
    member = config.get_experiment_from_key("group_exp_b")
    assert member is not None
    assert (member.group_id, member.group_policy) == ("601", "random")


def test_typed_audiences_are_kept_as_trees_and_legacy_strings_are_decoded(config):
    typed = config.get_audience("203")
    legacy = config.get_audience("202")
    assert typed is not None
    assert legacy is not None
    assert typed.conditions == [
        "and",
        [
            "or",
            [
                "or",
                {"name": "app_version", "type": "custom_attribute", "match": "semver_ge", "value": "2.1.0"},
            ],
        ],
    ]
    assert isinstance(legacy.conditions, list)


def test_string_variable_with_json_subtype_becomes_json(config):
    flag = config.get_feature_from_key("banner")
    assert flag is not None
    assert flag.variables["config"].type == VariableType.JSON


def test_variable_value_falls_back_to_default(config):
    flag = config.get_feature_from_key("banner")
    off = config.get_variation_from_key("banner_feature_test", "off")
    assert flag is not None
    assert off is not None
    assert config.get_variable_value_for_variation(flag.variables["color"], off) == "blue"
    assert config.get_variable_value_for_variation(flag.variables["count"], off) == "1"


def test_reserved_attribute_prefix_is_its_own_id(config):
    assert config.get_attribute_id("country") == "111"
    assert config.get_attribute_id("$opt_user_agent") == "$opt_user_agent"
    assert config.get_attribute_id("unknown") is None


def test_unsupported_version_is_its_own_error():
    with pytest.raises(UnsupportedDatafileVersionError):
        ProjectConfig.from_datafile('{"version": "5"}')


def test_truncated_json_is_an_invalid_datafile():
    with pytest.raises(InvalidDatafileError):
        ProjectConfig.from_datafile(BASIC[:200])
