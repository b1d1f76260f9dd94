"""Fixtures of the OpenFeature provider tests: a datafile with every variable type, clients, the API."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature import api

import flagstream
from flagstream.delivery.forwarding import ForwardingEventProcessor
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


@pytest.fixture
def dispatcher() -> CapturingEventDispatcher:
    return CapturingEventDispatcher()


@pytest.fixture
def client(dispatcher: CapturingEventDispatcher) -> Iterator[flagstream.Optimizely]:
    """A client that forwards each event at once to a capturing dispatcher."""
    instance = flagstream.Optimizely(
        json.dumps(datafile()), event_processor=ForwardingEventProcessor(dispatcher)
    )
    yield instance
    instance.close()


@pytest.fixture
def twin() -> Iterator[tuple[flagstream.Optimizely, CapturingEventDispatcher]]:
    """A second client on the same datafile: what ``user.decide`` does, to compare with."""
    capture = CapturingEventDispatcher()
    instance = flagstream.Optimizely(
        json.dumps(datafile()), event_processor=ForwardingEventProcessor(capture)
    )
    yield instance, capture
    instance.close()


@pytest.fixture(autouse=True)
def clean_api() -> Iterator[None]:
    """OpenFeature's API is global: every test starts and ends with none of its state."""
    api.shutdown()
    yield
    api.shutdown()


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
