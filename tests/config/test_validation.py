from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from datafile_gen import random_datafile
from datafile_mutations import JSON_VALUES, mutated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optimizely import logger as optimizely_logger
from optimizely import optimizely_config as optimizely_config_module
from optimizely import project_config as optimizely_project_config
from optimizely.helpers import validator as optimizely_validator

from flagstream.config.project_config import ProjectConfig
from flagstream.config.validation import (
    MAX_CONDITION_DEPTH,
    check_version,
    parse_datafile_text,
    validate_datafile,
    validate_datafile_text,
)
from flagstream.errors import InvalidDatafileError, UnsupportedDatafileVersionError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def experiment(exp_id: str, key: str, **extra: Any) -> dict[str, Any]:
    exp = {
        "id": exp_id,
        "key": key,
        "status": "Running",
        "layerId": "L" + exp_id,
        "audienceIds": [],
        "forcedVariations": {},
        "variations": [{"id": exp_id + "1", "key": "a"}, {"id": exp_id + "2", "key": "b"}],
        "trafficAllocation": [
            {"entityId": exp_id + "1", "endOfRange": 5000},
            {"entityId": exp_id + "2", "endOfRange": 9000},
            {"entityId": "", "endOfRange": 10000},
        ],
    }
    exp.update(extra)
    return exp


BASE: dict[str, Any] = {
    "version": "4",
    "accountId": "1",
    "projectId": "2",
    "revision": "3",
    "attributes": [{"id": "11", "key": "age"}, {"id": "12", "key": "country"}],
    "audiences": [
        {"id": "21", "name": "adults", "conditions": '["and", {"name": "age", "type": "custom_attribute"}]'}
    ],
    "typedAudiences": [
        {"id": "21", "name": "adults", "conditions": ["and", {"name": "age", "match": "ge", "value": 1}]}
    ],
    "events": [{"id": "31", "key": "buy", "experimentIds": ["41"]}],
    "experiments": [
        experiment("41", "exp_a", audienceConditions=["or", "21", "404"]),
        experiment("42", "exp_b"),
        experiment("43", "exp_c"),
        experiment("44", "exp_d"),
    ],
    "groups": [
        {
            "id": "51",
            "policy": "random",
            "trafficAllocation": [{"entityId": "52", "endOfRange": 10000}],
            "experiments": [experiment("52", "grouped")],
        }
    ],
    "featureFlags": [
        {
            "id": "61",
            "key": "flag",
            "experimentIds": ["42", "52"],
            "rolloutId": "71",
            "variables": [{"id": "81", "key": "v", "type": "string", "defaultValue": "x"}],
        }
    ],
    "rollouts": [{"id": "71", "experiments": [experiment("72", "everyone_else")]}],
}

Mutation = Callable[[dict[str, Any]], Any]

# (what is wrong, how to break BASE, the exact message expected among the errors)
MALFORMED: list[tuple[str, Mutation, str]] = [
    (
        "endOfRange is a string",
        lambda d: d["experiments"][3]["trafficAllocation"][0].update(endOfRange="10"),
        "experiments[3].trafficAllocation[0].endOfRange: expected integer, got string",
    ),
    (
        "endOfRange is a float (JSON-schema draft 4 integers exclude 1.0)",
        lambda d: d["experiments"][0]["trafficAllocation"][0].update(endOfRange=5000.0),
        "experiments[0].trafficAllocation[0].endOfRange: expected integer, got number",
    ),
    (
        "endOfRange is a boolean",
        lambda d: d["experiments"][0]["trafficAllocation"][0].update(endOfRange=True),
        "experiments[0].trafficAllocation[0].endOfRange: expected integer, got boolean",
    ),
    ("missing projectId", lambda d: d.pop("projectId"), "projectId: missing required field"),
    ("missing groups", lambda d: d.pop("groups"), "groups: missing required field"),
    ("revision is a number", lambda d: d.update(revision=3), "revision: expected string, got integer"),
    (
        "experiments is an object",
        lambda d: d.update(experiments={}),
        "experiments: expected array, got object",
    ),
    (
        "an experiment is a string",
        lambda d: d["experiments"].append("x"),
        "experiments[4]: expected object, got string",
    ),
    (
        "experiment without layerId",
        lambda d: d["experiments"][1].pop("layerId"),
        "experiments[1].layerId: missing required field",
    ),
    (
        "variation without key",
        lambda d: d["experiments"][1]["variations"][0].pop("key"),
        "experiments[1].variations[0].key: missing required field",
    ),
    (
        "audienceIds holds a number",
        lambda d: d["experiments"][2]["audienceIds"].append(21),
        "experiments[2].audienceIds[0]: expected string, got integer",
    ),
    (
        "forcedVariations value is not a variation key",
        lambda d: d["experiments"][2]["forcedVariations"].update({"user 1": ["a"]}),
        'experiments[2].forcedVariations["user 1"]: expected string, got array',
    ),
    (
        "featureEnabled is a string",
        lambda d: d["experiments"][1]["variations"][1].update(featureEnabled="yes"),
        "experiments[1].variations[1].featureEnabled: expected boolean or null, got string",
    ),
    (
        "variable value is a number",
        lambda d: d["experiments"][1]["variations"][1].update(variables=[{"id": "81", "value": 3}]),
        "experiments[1].variations[1].variables[0].value: expected string, got integer",
    ),
    (
        "anonymizeIP is a string",
        lambda d: d.update(anonymizeIP="true"),
        "anonymizeIP: expected boolean, got string",
    ),
    (
        "botFiltering is a number",
        lambda d: d.update(botFiltering=1),
        "botFiltering: expected boolean or null, got integer",
    ),
    ("sdkKey is a number", lambda d: d.update(sdkKey=5), "sdkKey: expected string or null, got integer"),
    (
        "duplicate experiment id with a different body",
        lambda d: d["experiments"][3].update(id="41"),
        'experiments[3].id: duplicate experiment id "41" (first at experiments[0])',
    ),
    (
        "rollout rule reuses an experiment id",
        lambda d: d["rollouts"][0]["experiments"][0].update(id="43"),
        'rollouts[0].experiments[0].id: duplicate experiment id "43" (first at experiments[2])',
    ),
    (
        "duplicate variation id in one experiment",
        lambda d: d["experiments"][0]["variations"][1].update(id="411"),
        'experiments[0].variations[1].id: duplicate variation id "411" (first at experiments[0].variations[0].id)',
    ),
    (
        "duplicate event key",
        lambda d: d["events"].append({"id": "32", "key": "buy", "experimentIds": []}),
        'events[1].key: duplicate event key "buy" (first at events[0].key)',
    ),
    (
        "duplicate attribute key",
        lambda d: d["attributes"].append({"id": "13", "key": "age"}),
        'attributes[2].key: duplicate attribute key "age" (first at attributes[0].key)',
    ),
    (
        "duplicate feature flag key",
        lambda d: d["featureFlags"].append({**d["featureFlags"][0], "id": "62"}),
        'featureFlags[1].key: duplicate feature flag key "flag" (first at featureFlags[0].key)',
    ),
    (
        "duplicate variable key",
        lambda d: d["featureFlags"][0]["variables"].append(
            {"id": "82", "key": "v", "type": "string", "defaultValue": ""}
        ),
        'featureFlags[0].variables[1].key: duplicate variable key "v" (first at featureFlags[0].variables[0].key)',
    ),
    (
        "duplicate legacy audience id",
        lambda d: d["audiences"].append(dict(d["audiences"][0])),
        'audiences[1].id: duplicate audience id "21" (first at audiences[0].id)',
    ),
    (
        "flag names an experiment that does not exist",
        lambda d: d["featureFlags"][0]["experimentIds"].append("999"),
        'featureFlags[0].experimentIds[2]: experiment "999" not found',
    ),
    (
        "flag names a rollout rule as an experiment",
        lambda d: d["featureFlags"][0]["experimentIds"].append("72"),
        'featureFlags[0].experimentIds[2]: experiment "72" not found',
    ),
    (
        "flag's rollout does not exist",
        lambda d: d["featureFlags"][0].update(rolloutId="999"),
        'featureFlags[0].rolloutId: rollout "999" not found',
    ),
    (
        "flag without variables",
        lambda d: d["featureFlags"][0].pop("variables"),
        "featureFlags[0].variables: missing required field",
    ),
    (
        "traffic goes to a variation that does not exist",
        lambda d: d["experiments"][0]["trafficAllocation"][1].update(entityId="999"),
        'experiments[0].trafficAllocation[1].entityId: variation "999" not found',
    ),
    (
        "group traffic goes to an experiment outside the group",
        lambda d: d["groups"][0]["trafficAllocation"][0].update(entityId="41"),
        'groups[0].trafficAllocation[0].entityId: experiment "41" not found',
    ),
    (
        "legacy conditions are not JSON",
        lambda d: d["audiences"][0].update(conditions='["and", {'),
        "audiences[0].conditions: not valid JSON (Expecting property name enclosed in double quotes:"
        " line 1 column 10 (char 9))",
    ),
    (
        "legacy conditions hold a bare string leaf",
        lambda d: d["audiences"][0].update(conditions='["and", "age"]'),
        "audiences[0].conditions[1]: expected object or array, got string",
    ),
    (
        "typed conditions are a string",
        lambda d: d["typedAudiences"][0].update(conditions="[]"),
        "typedAudiences[0].conditions: expected object or array, got string",
    ),
    (
        "typed conditions hold an empty array",
        lambda d: d["typedAudiences"][0].update(conditions=["and", []]),
        "typedAudiences[0].conditions[1]: empty condition array",
    ),
    (
        "condition attribute name is an array",
        lambda d: d["typedAudiences"][0].update(conditions=["and", {"name": ["age"], "match": "exists"}]),
        "typedAudiences[0].conditions[1].name: expected string, got array",
    ),
    (
        "condition match type is an object",
        lambda d: d["typedAudiences"][0].update(conditions={"name": "age", "match": {}}),
        "typedAudiences[0].conditions.match: expected string, got object",
    ),
    (
        "segment condition value is an array",
        lambda d: d["typedAudiences"][0].update(
            conditions=["or", {"name": "s", "match": "qualified", "value": []}]
        ),
        "typedAudiences[0].conditions[1].value: expected string, got array",
    ),
    (
        "audienceConditions is a string",
        lambda d: d["experiments"][0].update(audienceConditions="21"),
        "experiments[0].audienceConditions: expected array or null, got string",
    ),
    (
        "audienceConditions holds a number",
        lambda d: d["experiments"][0].update(audienceConditions=["or", 21]),
        "experiments[0].audienceConditions[1]: expected string or array, got integer",
    ),
    (
        "audienceConditions is an array holding only an array",
        lambda d: d["experiments"][0].update(audienceConditions=[["or", "21"]]),
        "experiments[0].audienceConditions: array whose only element is an array (write the inner array alone)",
    ),
    (
        "rollout rule without status",
        lambda d: d["rollouts"][0]["experiments"][0].pop("status"),
        "rollouts[0].experiments[0].status: missing required field",
    ),
    (
        "holdout without audienceIds",
        lambda d: d.update(holdouts=[{k: v for k, v in experiment("91", "h").items() if k != "audienceIds"}]),
        "holdouts[0].audienceIds: missing required field",
    ),
    (
        "local holdout's includedRules holds a number",
        lambda d: d.update(localHoldouts=[{**experiment("91", "h"), "includedRules": [72]}]),
        "localHoldouts[0].includedRules[0]: expected string, got integer",
    ),
    (
        "integration without key",
        lambda d: d.update(integrations=[{"host": "h"}]),
        "integrations[0].key: missing required field",
    ),
]


def test_base_datafile_is_valid():
    assert validate_datafile(BASE) == []
    assert optimizely_validator.is_datafile_valid(json.dumps(BASE))


@pytest.mark.parametrize(
    ("mutation", "expected"), [(m, e) for _, m, e in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_malformed_datafile_is_reported_with_its_json_path(mutation: Mutation, expected: str):
    datafile = copy.deepcopy(BASE)
    mutation(datafile)
    errors = validate_datafile(datafile)
    assert expected in errors, errors
    with pytest.raises(InvalidDatafileError) as info:
        ProjectConfig.from_datafile(json.dumps(datafile))
    assert expected in info.value.errors


def test_every_problem_is_reported_not_just_the_first():
    datafile = copy.deepcopy(BASE)
    datafile["experiments"][0]["trafficAllocation"][0]["endOfRange"] = "x"
    datafile["events"][0].pop("key")
    datafile["featureFlags"][0]["rolloutId"] = "nope"
    assert validate_datafile(datafile) == [
        "experiments[0].trafficAllocation[0].endOfRange: expected integer, got string",
        "events[0].key: missing required field",
        'featureFlags[0].rolloutId: rollout "nope" not found',
    ]


def test_missing_audience_is_tolerated_as_optimizely_evaluates_it_as_unknown():
    datafile = copy.deepcopy(BASE)
    datafile["experiments"][1]["audienceIds"] = ["404"]
    datafile["experiments"][1]["audienceConditions"] = ["and", "404", ["not", "405"]]
    assert validate_datafile(datafile) == []


def test_same_experiment_listed_twice_is_tolerated():
    datafile = copy.deepcopy(BASE)
    datafile["experiments"].append(copy.deepcopy(datafile["groups"][0]["experiments"][0]))
    assert validate_datafile(datafile) == []


def test_reused_experiment_keys_are_tolerated_as_flag_rules_may_share_keys():
    datafile = copy.deepcopy(BASE)
    datafile["rollouts"][0]["experiments"][0]["key"] = "exp_a"
    assert validate_datafile(datafile) == []


def test_global_holdout_included_rules_are_ignored_as_optimizely_ignores_them():
    datafile = copy.deepcopy(BASE)
    datafile["holdouts"] = [{**experiment("91", "h"), "includedRules": [1, 2]}]
    assert validate_datafile(datafile) == []


def test_deep_condition_trees_are_rejected_not_crashed_on():
    tree: Any = {"name": "age"}
    for _ in range(MAX_CONDITION_DEPTH + 5):
        tree = ["and", tree]
    datafile = copy.deepcopy(BASE)
    datafile["typedAudiences"][0]["conditions"] = tree
    errors = validate_datafile(datafile)
    assert len(errors) == 1
    assert errors[0].endswith(f"conditions nested deeper than {MAX_CONDITION_DEPTH} levels")


@pytest.mark.parametrize(("top", "kind"), [([], "array"), ("x", "string"), (1, "integer"), (None, "null")])
def test_non_object_top_level_is_reported(top: object, kind: str):
    assert validate_datafile(top) == [f"datafile: expected object, got {kind}"]


# -- text ---------------------------------------------------------------------------


def test_truncated_json_is_reported_with_line_and_column():
    text = '{\n  "version": "4",\n  "revision": "3'
    assert validate_datafile_text(text) == [
        "datafile: line 3 column 15: Unterminated string starting at (truncated?)"
    ]
    assert validate_datafile_text(json.dumps(BASE)[:-1]) == [
        f"datafile: line 1 column {len(json.dumps(BASE))}: Expecting ',' delimiter (truncated?)"
    ]


def test_syntax_error_in_the_middle_names_its_line_and_column():
    assert validate_datafile_text('{\n  "version": "4",\n  "revision": 3x\n}') == [
        "datafile: line 3 column 16: Expecting ',' delimiter"
    ]


def test_bom_before_text_is_reported():
    assert validate_datafile_text("\ufeff" + json.dumps(BASE)) == [
        "datafile: line 1 column 1: unexpected byte order mark (BOM); "
        "read the file with encoding='utf-8-sig' or pass bytes"
    ]


def test_bom_before_bytes_is_accepted_as_optimizely_accepts_it():
    data = b"\xef\xbb\xbf" + json.dumps(BASE).encode()
    assert validate_datafile_text(data) == []
    assert optimizely_validator.is_datafile_valid(data)


@pytest.mark.parametrize(
    ("text", "kind"), [("[]", "array"), ('"x"', "string"), ("4", "integer"), ("null", "null")]
)
def test_non_object_json_is_reported(text: str, kind: str):
    assert validate_datafile_text(text) == [f"datafile: expected a JSON object, got {kind}"]


def test_invalid_utf8_is_reported():
    assert validate_datafile_text(b'{"version": "\xff"}') == ["datafile: byte 13: not valid UTF-8"]


def test_nan_and_huge_integers_are_read_as_optimizely_reads_them():
    datafile = copy.deepcopy(BASE)
    datafile["typedAudiences"][0]["conditions"] = ["and", {"name": "age", "match": "ge", "value": 10**30}]
    text = json.dumps(datafile).replace("1000000000000000000000000000000", "NaN")
    assert validate_datafile_text(text) == []
    assert validate_datafile_text(json.dumps(datafile)) == []


def test_parse_datafile_text_raises_with_the_message_in_errors():
    with pytest.raises(InvalidDatafileError) as info:
        parse_datafile_text("[1, 2")
    assert info.value.errors == (str(info.value),)


# -- version --------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2", "3", "4"])
def test_supported_versions_pass(version: str):
    assert check_version({"version": version}) == version


@pytest.mark.parametrize("version", ["1", "5", 4, None, ""])
def test_unsupported_version_raises_its_own_error_with_optimizely_message(version: object):
    with pytest.raises(UnsupportedDatafileVersionError) as info:
        check_version({"version": version})
    assert str(info.value) == (
        f'This version of the Python SDK does not support the given datafile version: "{version}".'
    )


# -- generated and fuzzed ---------------------------------------------------------------


def optimizely_loads(text: str) -> bool:
    """optimizely-sdk builds its config and its OptimizelyConfig (as its config manager does)."""
    try:
        config = optimizely_project_config.ProjectConfig(text, optimizely_logger.NoOpLogger(), None)
        optimizely_config_module.OptimizelyConfigService(config, optimizely_logger.NoOpLogger()).get_config()
    except Exception:
        return False
    return True


@FUZZ
@given(seed=st.integers(0, 2**32), version=st.sampled_from(["2", "3", "4"]))
def test_generated_valid_datafiles_are_accepted_as_optimizely_accepts_them(seed: int, version: str):
    datafile = random_datafile(seed, version)
    text = json.dumps(datafile)
    assert optimizely_validator.is_datafile_valid(text)
    assert optimizely_loads(text)
    assert validate_datafile(datafile) == []
    assert validate_datafile_text(text) == []
    assert ProjectConfig.from_datafile(text).revision == datafile["revision"]


@FUZZ
@given(data=st.data(), seed=st.integers(0, 2**32))
def test_mutated_datafiles_never_crash_and_what_we_accept_optimizely_can_use(data: st.DataObject, seed: int):
    datafile, how = data.draw(mutated(random_datafile(seed)))
    errors = validate_datafile(datafile)
    assert all(isinstance(e, str) for e in errors)
    text = json.dumps(datafile)
    if not optimizely_validator.is_datafile_valid(text):
        assert errors, f"{how}: optimizely's schema rejects this, we must too"
    if not errors and datafile.get("version") in ("2", "3", "4"):
        assert optimizely_loads(text), f"{how}: accepted but optimizely-sdk fails on it"
    try:
        ProjectConfig.from_datafile(text)
    except InvalidDatafileError:  # UnsupportedDatafileVersionError is a subclass
        pass
    else:
        assert not errors


@FUZZ
@given(value=JSON_VALUES)
def test_random_json_never_crashes_the_validator_or_the_builder(value: Any):
    assert isinstance(validate_datafile(value), list)
    text = json.dumps(value)
    assert isinstance(validate_datafile_text(text), list)
    with pytest.raises(InvalidDatafileError):
        ProjectConfig.from_datafile(text)


@FUZZ
@given(data=st.data(), seed=st.integers(0, 2**32))
def test_builder_never_crashes_on_mutations_even_without_validation(data: st.DataObject, seed: int):
    datafile, _ = data.draw(mutated(random_datafile(seed)))
    with contextlib.suppress(InvalidDatafileError):
        ProjectConfig.from_datafile(json.dumps(datafile), skip_json_validation=True)


@FUZZ
@given(text=st.text(max_size=60) | st.binary(max_size=60))
def test_random_text_never_crashes_the_text_validator(text: str | bytes):
    assert isinstance(validate_datafile_text(text), list)
