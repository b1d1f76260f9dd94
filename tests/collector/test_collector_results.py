"""Results math against a hand-computed example, and the JSON read APIs."""

from __future__ import annotations

import math

import pytest
from tests.collector.helpers import body_of, conversion, get, get_json, impression, post

from flagstream.collector import Collector
from flagstream.collector.results import compare


def _hand_example(collector: Collector) -> None:
    """control (101): 4 visitors, c1 and c2 buy (c2 twice), c3 bought only before being decided.
    treatment (102): 5 visitors, t1-t3 buy once each for 300."""
    events = [impression(f"c{i}", "101", ts=1000, variation_key="control") for i in range(1, 5)]
    events += [impression(f"t{i}", "102", ts=1000, variation_key="treatment") for i in range(1, 6)]
    events += [
        conversion("c1", ts=2000, revenue=50),
        conversion("c2", ts=2000, revenue=100),
        conversion("c2", ts=3000, revenue=200),
        conversion("c3", ts=500, revenue=999),  # before the decision: not attributed
        conversion("t1", ts=2000, revenue=300),
        conversion("t2", ts=2000, revenue=300),
        conversion("t3", ts=2000, revenue=300),
        conversion("t1", key="signup", ts=2500),
    ]
    assert post(collector, body_of(events))[0] == 204


def test_results_match_the_hand_computed_example(collector: Collector) -> None:
    _hand_example(collector)
    (experiment,) = get_json(collector, "/api/results")["experiments"]
    assert experiment["rule_key"] == "checkout_test"
    assert experiment["event_keys"] == ["purchase", "signup"]
    control, treatment = experiment["variations"]
    assert (control["variation_key"], control["visitors"]) == ("control", 4)
    assert (treatment["variation_key"], treatment["visitors"]) == ("treatment", 5)
    c, t = control["metrics"]["purchase"], treatment["metrics"]["purchase"]
    assert (c["conversions"], c["events"], c["revenue"], c["rate"]) == (2, 3, 350, 0.5)
    assert (t["conversions"], t["events"], t["revenue"], t["rate"]) == (3, 3, 900, 0.6)
    assert c["lift"] is None
    assert c["p_value"] is None
    # lift = (0.6 - 0.5) / 0.5; pooled p = 5/9, se = sqrt(5/9 * 4/9 * (1/4 + 1/5)) = 1/3, z = 0.3
    assert t["lift"] == pytest.approx(0.2)
    assert t["p_value"] == pytest.approx(math.erfc(0.3 / math.sqrt(2)))
    assert t["p_value"] == pytest.approx(0.76418, abs=1e-5)
    # CI: 0.1 ± 1.96 * sqrt(0.25/4 + 0.24/5), divided by 0.5
    half = 1.959964 * math.sqrt(0.0625 + 0.048)
    assert t["ci_low"] == pytest.approx((0.1 - half) / 0.5, abs=1e-5)
    assert t["ci_high"] == pytest.approx((0.1 + half) / 0.5, abs=1e-5)
    assert treatment["metrics"]["signup"]["conversions"] == 1
    assert control["metrics"]["signup"]["conversions"] == 0


def test_compare_on_a_textbook_example() -> None:
    lift, low, high, p_value = compare(1000, 100, 1000, 130)
    assert lift == pytest.approx(0.3)
    assert p_value == pytest.approx(0.03549, abs=1e-5)  # z = 0.03 / sqrt(.115 * .885 * .002) = 2.1027
    assert low is not None
    assert high is not None
    assert low < lift < high


def test_compare_with_no_base_conversions_has_no_lift() -> None:
    assert compare(100, 0, 100, 5)[0] is None
    assert compare(100, 0, 100, 0)[3] == 1.0


def test_conversion_counts_in_every_experiment_decided_before_it(collector: Collector) -> None:
    events = [
        impression("v", "101", experiment="900", ts=1000),
        impression("v", "201", experiment="950", ts=3000, rule_key="other_test"),
        conversion("v", ts=2000),
        conversion("v", key="refund", ts=4000),
    ]
    post(collector, body_of(events))
    results = {e["rule_key"]: e for e in get_json(collector, "/api/results")["experiments"]}
    first = results["checkout_test"]["variations"][0]["metrics"]
    second = results["other_test"]["variations"][0]["metrics"]
    assert (first["purchase"]["conversions"], first["refund"]["conversions"]) == (1, 1)
    assert set(second) == {"refund"}


def test_results_filter_by_experiment_id_or_rule_key(collector: Collector) -> None:
    post(
        collector,
        body_of([impression("a", experiment="900"), impression("b", "201", experiment="950", rule_key="x")]),
    )
    assert [
        e["experiment_id"] for e in get_json(collector, "/api/results?experiment=950")["experiments"]
    ] == ["950"]
    assert [e["experiment_id"] for e in get_json(collector, "/api/results?experiment=x")["experiments"]] == [
        "950"
    ]


def test_events_api_filters_and_pages(collector: Collector) -> None:
    events = [impression(f"u{i}", ts=1000 + i) for i in range(5)] + [
        conversion("u1"),
        conversion("u2", key="signup"),
    ]
    post(collector, body_of(events))
    page1 = get_json(collector, "/api/events?limit=3")
    assert page1["count"] == 3
    page2 = get_json(collector, f"/api/events?limit=3&after={page1['next_after']}")
    page3 = get_json(collector, f"/api/events?limit=3&after={page2['next_after']}")
    assert page3["next_after"] is None
    ids = [e["id"] for p in (page1, page2, page3) for e in p["events"]]
    assert len(ids) == len(set(ids)) == 7
    assert [e["key"] for e in get_json(collector, "/api/events?visitor=u1")["events"]] == [
        "campaign_activated",
        "purchase",
    ]
    assert [e["visitor_id"] for e in get_json(collector, "/api/events?key=signup")["events"]] == ["u2"]
    assert len(get_json(collector, "/api/events?experiment=900")["events"]) == 7
    assert get_json(collector, "/api/events?experiment=nope")["events"] == []


def test_events_api_rejects_a_bad_limit(collector: Collector) -> None:
    status, _, body = get(collector, "/api/events?limit=0")
    assert status == 400
    assert b"limit" in body


def test_metrics_are_prometheus_text(collector: Collector) -> None:
    body = body_of([impression("m")])
    post(collector, body)
    post(collector, body)
    post(collector, b"{}")
    status, headers, text = get(collector, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = text.decode().splitlines()
    assert 'flagstream_collector_requests_total{status="204"} 2' in lines
    assert 'flagstream_collector_requests_total{status="400"} 1' in lines
    assert "flagstream_collector_events_stored 1" in lines
    assert "flagstream_collector_duplicate_events_total 1" in lines
    assert "flagstream_collector_payload_errors_total 1" in lines
