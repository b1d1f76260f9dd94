"""The results page served at ``GET /``: event counts, the results table and recent events.

Every string that came from an event (keys, ids, attribute values, tags) goes
through :func:`html.escape`; nothing from a payload is ever markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from flagstream._version import __version__
from flagstream.collector.results import ExperimentResult, MetricResult

__all__ = ["render_page"]

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1d232a;background:#fafbfc}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:2rem 0 .5rem}
.sub{color:#5b6670;margin:0 0 1.5rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{background:#fff;border:1px solid #dde3e9;border-radius:8px;padding:.75rem 1.25rem;min-width:9rem}
.card b{display:block;font-size:1.4rem}.card span{color:#5b6670}
table{border-collapse:collapse;background:#fff;border:1px solid #dde3e9;width:100%}
th,td{padding:.4rem .7rem;border-bottom:1px solid #eef1f4;text-align:left;vertical-align:top}
th{background:#f1f4f7;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
td.n{white-space:nowrap}td.var{font-weight:600}tr.base td{color:#5b6670}
td.win{color:#0a7a32;font-weight:600}td.lose{color:#b3261e;font-weight:600}
tr.exp th{background:#e6ecf2;font-size:.95rem;border-top:2px solid #c9d2da}tr.exp small{font-weight:400;color:#5b6670}
code{font-size:12px;word-break:break-all}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value * 100:+.1f}&nbsp;%" if signed else f"{value * 100:.2f}&nbsp;%"


def _lift(m: MetricResult) -> str:
    if m.lift is None:
        return "—"
    return f"{_pct(m.lift, True)} <small>[{_pct(m.ci_low, True)}, {_pct(m.ci_high, True)}]</small>"


def _lift_class(m: MetricResult) -> str:
    if m.p_value is None or m.lift is None or m.p_value >= 0.05:
        return ""
    return " win" if m.lift > 0 else " lose"


def _experiment_rows(r: ExperimentResult) -> list[str]:
    keys = r.event_keys or ("",)
    title = (
        f'<tr class="exp"><th colspan="8">{_e(r.flag_key or "(no flag)")} / '
        f"{_e(r.rule_key or r.experiment_id or '(no rule)')} <small>{_e(r.rule_type)} · "
        f"{r.visitors:,} visitors</small></th></tr>"
    )
    rows = [title]
    for index, v in enumerate(r.variations):
        base = ' class="base"' if index == 0 else ""
        for k, key in enumerate(keys):
            cells = []
            if k == 0:
                span = f' rowspan="{len(keys)}"'
                cells.append(
                    f'<td{span} class="var">{_e(v.variation_key or v.variation_id or "(none)")}</td>'
                )
                cells.append(f'<td{span} class="n">{v.visitors:,}</td>')
            m = v.metric(key) if key else None
            if m is None:
                cells.append(f"<td>{_e(key) or '—'}</td>" + '<td class="n">0</td>' * 2 + "<td>—</td>" * 3)
            else:
                p_value = "—" if m.p_value is None else f"{m.p_value:.4f}"
                cells += [
                    f"<td>{_e(m.key)}</td>",
                    f'<td class="n">{m.conversions:,}</td>',
                    f'<td class="n">{_pct(m.rate)}</td>',
                    f'<td class="n">{m.revenue:,}</td>',
                    f'<td class="n lift{_lift_class(m)}">{_lift(m)}</td>',
                    f'<td class="n">{p_value}</td>',
                ]
            rows.append(f"<tr{base}>{''.join(cells)}</tr>")
    return rows


def _results_table(results: Sequence[ExperimentResult]) -> str:
    head = (
        "<tr><th>Variation</th><th>Visitors</th><th>Event</th><th>Conversions</th><th>Rate</th>"
        "<th>Revenue</th><th>Lift vs first (95&nbsp;% CI)</th><th>p-value</th></tr>"
    )
    bodies = [f"<tbody>{''.join(_experiment_rows(r))}</tbody>" for r in results]
    if not bodies:
        bodies.append('<tbody><tr><td colspan="8">No decisions received yet.</td></tr></tbody>')
    return f'<table id="results"><thead>{head}</thead>{"".join(bodies)}</table>'


def _counts_table(counts: Sequence[tuple[str, int]]) -> str:
    rows = "".join(f'<tr><td>{_e(k)}</td><td class="n">{n:,}</td></tr>' for k, n in counts)
    return f'<table id="event-counts"><thead><tr><th>Event key</th><th>Events</th></tr></thead><tbody>{rows}</tbody></table>'


def _recent_table(events: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for ev in events:
        attrs = ", ".join(f"{a.get('key')}={a.get('value')}" for a in ev.get("attributes", []))
        rows.append(
            f'<tr><td>{_e(ev["visitor_id"])}</td><td>{_e(ev["key"])}</td><td class="n">{_e(ev["timestamp"])}</td>'
            f"<td><code>{_e(ev['uuid'])}</code></td><td>{_e(attrs)}</td></tr>"
        )
    return (
        '<table id="recent-events"><thead><tr><th>Visitor</th><th>Event</th><th>Timestamp</th><th>uuid</th>'
        f"<th>Attributes</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render_page(
    results: Sequence[ExperimentResult],
    counters: Mapping[str, object],
    counts_by_key: Sequence[tuple[str, int]],
    visitors: int,
    recent: Sequence[Mapping[str, Any]],
) -> str:
    """The whole HTML page."""
    responses = counters.get("responses", {})
    requests = sum(responses.values()) if isinstance(responses, dict) else 0
    cards = [
        ("events stored", counters.get("events_stored", 0)),
        ("visitors", visitors),
        ("duplicates ignored", counters.get("duplicates", 0)),
        ("requests", requests),
        ("payload errors", counters.get("payload_errors", 0)),
    ]
    card_html = "".join(
        f'<div class="card"><b>{n:,}</b><span>{_e(label)}</span></div>'
        for label, n in cards
        if isinstance(n, int)
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>flagstream collector</title><style>{_STYLE}</style></head><body>"
        "<h1>flagstream collector</h1>"
        f'<p class="sub">Local Event API · flagstream {_e(__version__)} · '
        'JSON: <a href="/api/results">/api/results</a>, <a href="/api/events">/api/events</a>, '
        '<a href="/metrics">/metrics</a></p>'
        f'<div class="cards" id="counts">{card_html}</div>'
        f"<h2>Results</h2>{_results_table(results)}"
        f"<h2>Events by key</h2>{_counts_table(counts_by_key)}"
        f"<h2>Latest events</h2>{_recent_table(recent)}"
        "</body></html>"
    )
