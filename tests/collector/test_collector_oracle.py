"""Payloads sent by optimizely-sdk itself (the oracle) are accepted, stored and counted in results."""

from __future__ import annotations

import json
import logging
import urllib.request
from importlib import resources
from typing import Any

from optimizely import optimizely
from optimizely.logger import SimpleLogger
from tests.collector.helpers import get_json

from flagstream.collector import Collector


class _PostingDispatcher:
    """optimizely-sdk's dispatcher duck type: POSTs each LogEvent's JSON, to the local collector."""

    def __init__(self, collector: Collector) -> None:
        self.url = collector.events_url
        self.statuses: list[int] = []

    def dispatch_event(self, log_event: Any) -> None:
        body = json.dumps(log_event.params).encode()
        request = urllib.request.Request(self.url, body, log_event.headers, method=log_event.http_verb)
        with urllib.request.urlopen(request, timeout=10) as response:
            self.statuses.append(response.status)


def _sdk_client(dispatcher: _PostingDispatcher) -> optimizely.Optimizely:
    datafile = resources.files("flagstream.data").joinpath("demo_shop_datafile.json").read_text()
    return optimizely.Optimizely(
        datafile, event_dispatcher=dispatcher, logger=SimpleLogger(min_level=logging.CRITICAL)
    )


def test_optimizely_sdk_impressions_and_conversions_are_stored(collector: Collector) -> None:
    dispatcher = _PostingDispatcher(collector)
    client = _sdk_client(dispatcher)
    try:
        attributes = {"country": "DE", "device": "mobile", "is_member": True, "cart_value": 80, "visits": 9}
        user = client.create_user_context("oracle-user", attributes)
        decisions = user.decide_all()
        user.track_event("purchase", {"revenue": 4999, "category": "shoes"})
    finally:
        client.close()
    assert set(dispatcher.statuses) == {204}
    assert collector.wait_for_events(len(decisions) + 1, timeout=5)
    stored = get_json(collector, "/api/events?visitor=oracle-user&limit=100")["events"]
    purchase = next(e for e in stored if e["key"] == "purchase")
    assert purchase["revenue"] == 4999
    assert purchase["tags"] == {"revenue": 4999, "category": "shoes"}
    assert {"key": "country", "value": "DE"}.items() <= next(
        a for a in purchase["attributes"] if a["key"] == "country"
    ).items()
    flags = {e["decisions"][0]["metadata"]["flag_key"] for e in stored if e["decisions"]}
    assert flags == set(decisions)
    results = get_json(collector, "/api/results?experiment=checkout_redesign")["experiments"]
    (checkout,) = results
    decided = decisions["checkout_flow"].variation_key
    row = next(v for v in checkout["variations"] if v["variation_key"] == decided)
    assert row["metrics"]["purchase"]["conversions"] == 1
