"""Helpers of the OpenFeature provider tests: a datafile with every variable type, users, versions."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient

import flagstream
from flagstream.testing import CapturingEventDispatcher

BASIC = json.loads((Path(__file__).parents[1] / "fixtures" / "basic_datafile.json").read_text())


def datafile() -> dict[str, Any]:
    """basic_datafile.json plus a json array variable, an unparsable integer and a one-variable flag.

    ``banner`` (feature test ``banner_feature_test``, then the rollout rules
    ``de_rule`` for country "de" and ``everyone_else`` at 50 %) gives SPLIT,
    TARGETING_MATCH and DEFAULT decisions; ``price`` has no rules at all.
    """
    df = copy.deepcopy(BASIC)
    banner = df["featureFlags"][0]
    banner["variables"] += [
        {"id": "5006", "key": "items", "type": "string", "subType": "json", "defaultValue": "[1, 2]"},
        {"id": "5007", "key": "broken", "type": "integer", "defaultValue": "4.5"},
    ]
    df["featureFlags"].append(
        {
            "id": "303",
            "key": "price",
            "experimentIds": [],
            "rolloutId": "",
            "variables": [{"id": "5101", "key": "amount", "type": "double", "defaultValue": "9.99"}],
        }
    )
    df["revision"] = "42"
    return df


def events_without_ids(capture: CapturingEventDispatcher) -> list[dict[str, Any]]:
    """Captured snapshot events with their per-event uuid and timestamp removed."""
    return [{k: v for k, v in e.items() if k not in ("uuid", "timestamp")} for e in capture.events()]


def user_with(client: flagstream.Optimizely, rule_key: str | None, **attributes: Any) -> str:
    """The first ``user_<n>`` whose ``banner`` decision comes from ``rule_key``."""
    for n in range(2000):
        user = client.create_user_context(f"user_{n}", dict(attributes))
        assert user is not None
        if user.decide("banner", ["DISABLE_DECISION_EVENT"]).rule_key == rule_key:
            return f"user_{n}"
    raise AssertionError(f"no user decided by {rule_key}")


#: openfeature-sdk 0.10 added set_provider_and_wait (raising when initialize fails); before it
#: set_provider itself waited for initialize and reported a failure only as PROVIDER_ERROR.
RAISES_ON_FAILED_INIT = hasattr(api, "set_provider_and_wait")
#: Tracking came with openfeature-sdk 0.9.
needs_tracking = pytest.mark.skipif(
    not hasattr(OpenFeatureClient, "track"), reason="openfeature-sdk before 0.9 has no track()"
)


def set_provider_and_wait(provider: Any) -> None:
    """``api.set_provider_and_wait`` on 0.10+, ``api.set_provider`` (which waits) on 0.8 and 0.9."""
    if RAISES_ON_FAILED_INIT:
        api.set_provider_and_wait(provider)
    else:
        api.set_provider(provider)


def failed_init() -> Any:
    """What a failing initialize looks like to the caller of :func:`set_provider_and_wait`."""
    if RAISES_ON_FAILED_INIT:
        return pytest.raises(Exception, match="no usable datafile")
    return contextlib.nullcontext()
