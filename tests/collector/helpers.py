"""Payload builders and a tiny HTTP client for the collector, CLI and browser tests."""

from __future__ import annotations

import gzip
import http.client
import uuid
from typing import Any

from flagstream import _json
from flagstream.collector import Collector
from flagstream.events.payload import build_log_event
from flagstream.events.user_event import (
    ConversionEvent,
    DecisionMetadata,
    EventContext,
    ImpressionEvent,
    UserEvent,
    VisitorAttribute,
)

CONTEXT = EventContext("111", "222", "7", "python-sdk", "5.7.0", False, True, "US", "")


def impression(
    user: str,
    variation: str = "9001",
    experiment: str = "900",
    ts: int = 1_000,
    attrs: tuple[VisitorAttribute, ...] = (),
    variation_key: str | None = None,
    rule_key: str = "checkout_test",
) -> ImpressionEvent:
    meta = DecisionMetadata("checkout", rule_key, "experiment", variation_key or f"v{variation}", True)
    return ImpressionEvent(CONTEXT, user, attrs, str(uuid.uuid4()), ts, "800", experiment, variation, meta)


def conversion(
    user: str, key: str = "purchase", ts: int = 2_000, revenue: int | None = None
) -> ConversionEvent:
    tags: dict[str, object] | None = {"revenue": revenue} if revenue is not None else None
    return ConversionEvent(CONTEXT, user, (), str(uuid.uuid4()), ts, "700", key, tags, revenue, None)


def body_of(events: list[UserEvent]) -> bytes:
    return build_log_event(events).body


def post(
    collector: Collector,
    body: bytes,
    headers: dict[str, str] | None = None,
    path: str = "/v1/events",
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(collector.host, collector.port, timeout=10)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def post_gzip(collector: Collector, body: bytes) -> tuple[int, dict[str, str], bytes]:
    return post(collector, gzip.compress(body), {"Content-Encoding": "gzip"})


def get(
    collector: Collector, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(collector.host, collector.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def get_json(collector: Collector, path: str, headers: dict[str, str] | None = None) -> Any:
    status, _, body = get(collector, path, headers)
    assert status == 200, body
    return _json.loads(body)
