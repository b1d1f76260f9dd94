"""User events and in-memory dispatchers for delivery tests (the client is built elsewhere)."""

from __future__ import annotations

import itertools
import threading
import time
import uuid as _uuid
from typing import Any

from flagstream import _json
from flagstream.delivery.result import DispatchResult
from flagstream.events.user_event import (
    ConversionEvent,
    DecisionMetadata,
    EventContext,
    ImpressionEvent,
    visitor_attribute,
)

_counter = itertools.count()


def context(endpoint: str = "http://127.0.0.1:9/v1/events", **changes: Any) -> EventContext:
    fields = {
        "account_id": "12001",
        "project_id": "111001",
        "revision": "42",
        "client_name": "python-sdk",
        "client_version": "5.7.0",
        "anonymize_ip": False,
        "bot_filtering": True,
        "region": "US",
        "endpoint": endpoint,
    }
    fields.update(changes)
    return EventContext(**fields)


def conversion(ctx: EventContext | None = None, *, user: str | None = None, key: str = "purchase", **kw: Any):
    n = next(_counter)
    return ConversionEvent(
        context=ctx or context(),
        user_id=user or f"user-{n}",
        attributes=(visitor_attribute("a1", "plan", "pro"),),
        uuid=str(_uuid.uuid4()),
        timestamp=kw.pop("timestamp", int(time.time() * 1000)),
        event_id="e1",
        event_key=key,
        tags=kw.pop("tags", None),
        revenue=kw.pop("revenue", None),
        value=kw.pop("value", None),
    )


def impression(ctx: EventContext | None = None, *, user: str | None = None):
    n = next(_counter)
    return ImpressionEvent(
        context=ctx or context(),
        user_id=user or f"user-{n}",
        attributes=(visitor_attribute("a1", "plan", "pro"),),
        uuid=str(_uuid.uuid4()),
        timestamp=int(time.time() * 1000),
        campaign_id="c1",
        experiment_id="x1",
        variation_id="v1",
        metadata=DecisionMetadata("flag", "rule", "experiment", "on", True),
    )


def uuids_of(body: bytes) -> list[str]:
    payload = _json.loads(body)
    return [e["uuid"] for v in payload["visitors"] for s in v["snapshots"] for e in s["events"]]


class RecordingDispatcher:
    """A plain optimizely-style dispatcher: records what it is given; optional gate and failures."""

    def __init__(self, fail: int = 0, gate: threading.Event | None = None) -> None:
        self.lock = threading.Lock()
        self.log_events: list[Any] = []
        self.uuids: list[str] = []
        self.fail = fail
        self.gate = gate
        self.calls = 0
        self.changed = threading.Condition(self.lock)
        self.entered = threading.Event()

    def dispatch_event(self, log_event: Any) -> None:
        self.entered.set()
        if self.gate is not None and not self.gate.wait(10):
            raise TimeoutError("gate never opened")
        with self.lock:
            self.calls += 1
            if self.fail > 0:
                self.fail -= 1
                raise ConnectionError("simulated failure")
            self.log_events.append(log_event)
            self.uuids.extend(uuids_of(log_event.body))
            self.changed.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        with self.lock:
            return self.changed.wait_for(lambda: len(self.uuids) >= n, timeout)


class ScriptedDispatcher:
    """A result-returning dispatcher whose answers come from ``answer(log_event) -> DispatchResult``."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.lock = threading.Lock()
        self.sent: list[tuple[float, Any, DispatchResult]] = []

    def dispatch_event(self, log_event: Any) -> None:
        self.send(log_event)

    def send(self, log_event: Any, deadline: float | None = None) -> DispatchResult:
        result = self.answer(log_event)
        with self.lock:
            self.sent.append((time.monotonic(), log_event, result))
        return result
