"""One test per deliberate difference from optimizely-sdk in datafile handling (docs/compatibility.md).

Each test shows what optimizely-sdk 5.7 does and what flagstream does instead.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from datafile_server import Reply, serve
from optimizely import config_manager as optimizely_config_manager
from optimizely import logger as optimizely_logger
from optimizely import project_config as optimizely_project_config
from optimizely.error_handler import NoOpErrorHandler
from optimizely.helpers import validator as optimizely_validator
from optimizely.optimizely import Optimizely
from test_validation import BASE

from flagstream.config.polling import PollingConfigManager
from flagstream.config.validation import validate_datafile, validate_datafile_text

pytestmark = pytest.mark.timeout(60)


def broken(change: Any) -> dict[str, Any]:
    datafile = copy.deepcopy(BASE)
    change(datafile)
    return datafile


def optimizely_config(datafile: dict[str, Any]) -> optimizely_project_config.ProjectConfig:
    text = json.dumps(datafile)
    assert optimizely_validator.is_datafile_valid(text)
    return optimizely_project_config.ProjectConfig(text, optimizely_logger.NoOpLogger(), NoOpErrorHandler())


def test_duplicate_ids_are_rejected_though_optimizely_lets_the_last_one_win():
    datafile = broken(lambda d: d["events"].append({"id": "32", "key": "buy", "experimentIds": []}))
    config = optimizely_config(datafile)
    assert config.event_key_map["buy"].id == "32"  # the first "buy" is silently gone
    assert validate_datafile(datafile) == [
        'events[1].key: duplicate event key "buy" (first at events[0].key)'
    ]


def test_traffic_to_a_missing_variation_is_rejected_though_optimizely_decides_no_variation():
    datafile = broken(
        lambda d: d["experiments"][1]["trafficAllocation"].__setitem__(
            0, {"entityId": "9", "endOfRange": 10000}
        )
    )
    config = optimizely_config(datafile)
    assert config.get_variation_from_id("exp_b", "9") is None  # every bucketed user gets nothing
    assert validate_datafile(datafile) == [
        'experiments[1].trafficAllocation[0].entityId: variation "9" not found'
    ]


def test_flag_naming_a_rollout_rule_is_rejected_where_optimizely_constructor_raises():
    datafile = broken(lambda d: d["featureFlags"][0]["experimentIds"].append("72"))
    with pytest.raises(KeyError):
        Optimizely(json.dumps(datafile))  # its OptimizelyConfig build fails inside the constructor
    assert validate_datafile(datafile) == ['featureFlags[0].experimentIds[2]: experiment "72" not found']


def test_array_holding_only_an_array_is_rejected_where_optimizely_constructor_raises():
    datafile = broken(lambda d: d["experiments"][0].update(audienceConditions=[["or", "21"]]))
    with pytest.raises(TypeError):
        Optimizely(json.dumps(datafile))
    assert validate_datafile(datafile) == [
        "experiments[0].audienceConditions: array whose only element is an array (write the inner array alone)"
    ]


def test_wrong_types_outside_the_schema_are_rejected_though_optimizely_loads_them():
    def change(d: dict[str, Any]) -> None:
        d["rollouts"][0]["experiments"][0]["trafficAllocation"][0]["endOfRange"] = "5000"
        d["anonymizeIP"] = "yes"

    datafile = broken(change)
    config = optimizely_config(datafile)  # loads; bucketing into that rule later compares int < str
    assert config.anonymize_ip == "yes"  # and "yes" would go into every payload
    assert validate_datafile(datafile) == [
        "anonymizeIP: expected boolean, got string",
        "rollouts[0].experiments[0].trafficAllocation[0].endOfRange: expected integer, got string",
    ]


def test_utf16_datafile_bytes_are_rejected_though_optimizely_reads_them():
    data = json.dumps(BASE).encode("utf-16")
    assert optimizely_validator.is_datafile_valid(data)
    assert validate_datafile_text(data) == ["datafile: byte 0: not valid UTF-8"]


def test_first_datafile_wait_is_bounded_once_not_per_call():
    with serve(None) as server:  # 404: no datafile
        theirs = optimizely_config_manager.PollingConfigManager(
            url=server.url, blocking_timeout=0.3, update_interval=60
        )
        ours = PollingConfigManager(url=server.url, blocking_timeout=0.3, update_interval=60)
        try:
            assert server.wait_for_requests(2)
            started = time.monotonic()
            assert theirs.get_config() is None
            assert theirs.get_config() is None
            assert time.monotonic() - started >= 0.55  # 0.3 s on every call
            started = time.monotonic()
            assert ours.get_config() is None
            assert ours.get_config() is None
            assert time.monotonic() - started < 0.1  # the first round ended: no more waiting
        finally:
            theirs.stop()
            ours.stop()
            ours.join(5)


def test_last_modified_is_remembered_only_for_a_datafile_that_was_used():
    with serve(BASE) as server:
        server.replies.append(Reply(200, json.dumps(BASE).encode()[:50]))  # a cut-off download
        ours = PollingConfigManager(url=server.url, update_interval=0.05, blocking_timeout=5)
        try:
            assert server.wait_for_requests(3)
            assert "If-Modified-Since" not in server.requests[1]  # the cut-off one was fetched again in full
            assert ours.get_config() is not None
        finally:
            ours.stop()
            ours.join(5)
