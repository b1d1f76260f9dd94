"""The results page and the bearer token on the read side."""

from __future__ import annotations

import pytest
from tests.collector.helpers import body_of, conversion, get, impression, post

from flagstream.collector import Collector
from flagstream.events.user_event import visitor_attribute

EVIL = '<script>alert("x")</script>'


def test_page_shows_results_table_and_counts(collector: Collector) -> None:
    post(collector, body_of([impression("a", "101"), impression("b", "102"), conversion("b", revenue=700)]))
    status, headers, body = get(collector, "/")
    page = body.decode()
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<table id="results">' in page
    assert "checkout_test" in page
    assert '<div class="cards" id="counts">' in page
    assert "<b>3</b><span>events stored</span>" in page


def test_script_in_an_attribute_value_is_shown_as_text(collector: Collector) -> None:
    attrs = (visitor_attribute("5", "nickname", EVIL),)
    evil_user = impression('"><img src=x onerror=alert(1)>', attrs=attrs, variation_key=EVIL, rule_key=EVIL)
    post(collector, body_of([evil_user]))
    page = get(collector, "/")[2].decode()
    assert "<script>" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_empty_collector_page_says_so(collector: Collector) -> None:
    assert "No decisions received yet." in get(collector, "/")[2].decode()


@pytest.mark.parametrize("path", ["/", "/api/events", "/api/results", "/metrics"])
def test_token_is_required_on_read_paths(path: str) -> None:
    with Collector(token="s3cret") as collector:
        status, headers, _ = get(collector, path)
        assert status == 401
        assert headers["WWW-Authenticate"] == "Bearer"
        assert get(collector, path, {"Authorization": "Bearer wrong"})[0] == 401
        assert get(collector, path, {"Authorization": "Bearer s3cret"})[0] == 200
        assert get(collector, path + "?token=s3cret")[0] == 200


def test_token_does_not_guard_event_ingest() -> None:
    with Collector(token="s3cret") as collector:
        assert post(collector, body_of([impression("a")]))[0] == 204


def test_unknown_path_is_a_404(collector: Collector) -> None:
    assert get(collector, "/nope")[0] == 404


def test_head_answers_like_get_without_a_body(collector: Collector) -> None:
    import http.client

    conn = http.client.HTTPConnection(collector.host, collector.port, timeout=10)
    try:
        conn.request("HEAD", "/healthz")
        resp = conn.getresponse()
        assert resp.status == 200
        assert int(resp.headers["Content-Length"]) > 0
        assert resp.read() == b""
    finally:
        conn.close()


@pytest.mark.parametrize("query", ["after=x", "after=-1", "limit=1001", "limit=abc"])
def test_bad_query_values_are_a_400(collector: Collector, query: str) -> None:
    status, _, body = get(collector, f"/api/events?{query}")
    assert status == 400
    assert query.split("=")[0].encode() in body
