"""The collector's read side: ``/healthz``, ``/metrics``, ``/api/events``, ``/api/results`` and ``/``.

Each route takes the shared state and the parsed query string and returns
``(status, body, content type)``; the handler does the HTTP and the token check.
"""

from __future__ import annotations

from collections.abc import Callable

from flagstream import _json
from flagstream.collector.page import render_page
from flagstream.collector.results import to_json
from flagstream.collector.state import CollectorState
from flagstream.collector.storage import EventQuery

__all__ = ["GET_ROUTES", "BadQueryError", "health", "metrics_text"]

Query = dict[str, list[str]]
Route = Callable[[CollectorState, Query], tuple[int, bytes, str]]

JSON = "application/json"
MAX_PAGE = 1000


class BadQueryError(ValueError):
    """A query parameter has a wrong value."""


def _one(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _int(query: Query, name: str, default: int, low: int, high: int) -> int:
    raw = _one(query, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQueryError(f"{name}: expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadQueryError(f"{name}: must be between {low} and {high}, got {value}")
    return value


def health(state: CollectorState) -> dict[str, object]:
    """The ``/healthz`` answer."""
    return {"status": "ok", "events": state.store.event_count}


def api_events(state: CollectorState, query: Query) -> tuple[int, bytes, str]:
    """``GET /api/events?visitor=&experiment=&key=&after=&limit=``: a page of events, oldest first."""
    q = EventQuery(
        visitor=_one(query, "visitor"),
        experiment=_one(query, "experiment"),
        key=_one(query, "key"),
        after=_int(query, "after", 0, 0, 2**63 - 1),
        limit=_int(query, "limit", 100, 1, MAX_PAGE),
    )
    events = state.store.events(q)
    next_after = events[-1]["id"] if len(events) == q.limit else None
    return 200, _json.dumps({"events": events, "count": len(events), "next_after": next_after}), JSON


def api_results(state: CollectorState, query: Query) -> tuple[int, bytes, str]:
    """``GET /api/results?experiment=``: results per experiment or flag rule and variation."""
    results = state.results(_one(query, "experiment"))
    body = {
        "events": state.store.event_count,
        "visitors": state.store.visitor_count(),
        "experiments": to_json(results),
    }
    return 200, _json.dumps(body), JSON


_METRICS = (
    (
        "events_received_total",
        "counter",
        "Events in POST /v1/events bodies, duplicates included.",
        "events_received",
    ),
    ("events_stored", "gauge", "Unique events stored.", "events_stored"),
    ("duplicate_events_total", "counter", "Events ignored as duplicates of a stored event.", "duplicates"),
    ("payload_errors_total", "counter", "Requests rejected by payload validation.", "payload_errors"),
    (
        "bytes_received_total",
        "counter",
        "Request body bytes received, as sent on the wire.",
        "bytes_received",
    ),
    ("uptime_seconds", "gauge", "Seconds since the collector started.", "uptime_seconds"),
)


def metrics_text(state: CollectorState) -> str:
    """Prometheus text exposition of the collector's counters."""
    snap = state.snapshot()
    lines = [
        "# HELP flagstream_collector_requests_total POST /v1/events requests by status (0: reset).",
        "# TYPE flagstream_collector_requests_total counter",
    ]
    responses = snap["responses"]
    assert isinstance(responses, dict)
    lines += [
        f'flagstream_collector_requests_total{{status="{status}"}} {n}'
        for status, n in sorted(responses.items())
    ]
    lines += [
        "# HELP flagstream_collector_faults_injected_total Injected faults by kind.",
        "# TYPE flagstream_collector_faults_injected_total counter",
    ]
    faults = snap["faults_injected"]
    assert isinstance(faults, dict)
    lines += [
        f'flagstream_collector_faults_injected_total{{kind="{kind}"}} {faults.get(kind, 0)}'
        for kind in ("fail", "reset")
    ]
    for name, kind, help_text, field in _METRICS:
        lines += [
            f"# HELP flagstream_collector_{name} {help_text}",
            f"# TYPE flagstream_collector_{name} {kind}",
            f"flagstream_collector_{name} {snap[field]}",
        ]
    return "\n".join(lines) + "\n"


def metrics(state: CollectorState, query: Query) -> tuple[int, bytes, str]:
    """``GET /metrics``."""
    return 200, metrics_text(state).encode(), "text/plain; version=0.0.4; charset=utf-8"


def page(state: CollectorState, query: Query) -> tuple[int, bytes, str]:
    """``GET /``: the results page."""
    html = render_page(
        state.results(),
        state.snapshot(),
        state.store.counts_by_key(),
        state.store.visitor_count(),
        state.store.recent_events(20),
    )
    return 200, html.encode(), "text/html; charset=utf-8"


GET_ROUTES: dict[str, Route] = {
    "/": page,
    "/index.html": page,
    "/metrics": metrics,
    "/api/events": api_events,
    "/api/results": api_results,
}
