from __future__ import annotations

import json

from flagstream import LogEvent
from flagstream.events.log_event import body_of


def test_body_is_serialized_once_and_survives_params_mutation():
    event = LogEvent("https://logx.optimizely.com/v1/events", {"account_id": "1", "visitors": []})
    before = event.body
    event.params["account_id"] = "changed"
    assert event.body == before
    assert json.loads(event.body) == {"account_id": "1", "visitors": []}


def test_defaults_match_optimizely_log_event():
    event = LogEvent("u", {})
    assert event.http_verb == "POST"
    assert event.headers == {"Content-Type": "application/json"}


def test_body_of_serializes_foreign_log_events():
    class Foreign:
        url = "u"
        params = {"a": [1, 2]}

    assert json.loads(body_of(Foreign())) == {"a": [1, 2]}
