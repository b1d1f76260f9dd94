"""Rich tables for what a person watches: the demo's delivery summary and the results table."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from flagstream.collector.results import ExperimentResult, MetricResult
from flagstream.demo.run import DemoSummary

__all__ = ["results_table", "summary_table"]


def summary_table(summary: DemoSummary) -> Table:
    """Produced, delivered, retried, dropped, events/s, and what the collector stored."""
    table = Table(title="Delivery summary", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    dropped = ", ".join(f"{k}={v}" for k, v in sorted(summary.dropped.items()) if v) or "0"
    fail, reset = summary.faults_injected.get("fail", 0), summary.faults_injected.get("reset", 0)
    faults = f"{fail:,} failed answers, {reset:,} resets" if fail or reset else "none"
    rows = [
        ("users simulated", f"{summary.users:,}"),
        ("events produced", f"{summary.produced:,}"),
        ("events delivered", f"{summary.delivered:,}"),
        ("requests sent", f"{summary.requests:,}"),
        ("requests retried", f"{summary.retried:,}"),
        ("events dropped", dropped),
        ("faults injected", faults),
        ("stored by the collector", f"{summary.stored:,} (+{summary.duplicates:,} duplicates ignored)"),
        ("time", f"{summary.total_seconds:.1f} s ({summary.simulate_seconds:.1f} s simulating)"),
        ("throughput", f"{summary.events_per_second:,.0f} events/s"),
    ]
    for what, value in rows:
        table.add_row(what, value)
    verdict = (
        Text("every event arrived", style="bold green")
        if summary.ok
        else Text(f"{summary.produced - summary.stored:,} events missing", style="bold red")
    )
    table.add_row("result", verdict)
    return table


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value * 100:+.1f}%" if signed else f"{value * 100:.2f}%"


def _lift(m: MetricResult | None) -> Text:
    if m is None or m.lift is None:
        return Text("—", style="dim")
    text = f"{_pct(m.lift, True)} [{_pct(m.ci_low, True)}, {_pct(m.ci_high, True)}]"
    significant = m.p_value is not None and m.p_value < 0.05
    return Text(text, style=("green" if m.lift > 0 else "red") if significant else "")


def results_table(results: Sequence[ExperimentResult], metric: str = "purchase") -> Table:
    """One row per variation: visitors, the metric's conversions, rate, lift with its CI, p-value, revenue."""
    table = Table(title=f"Results ({metric}; lift against the first variation)", title_justify="left")
    for name, justify in (
        ("flag / rule", "left"),
        ("variation", "left"),
        ("visitors", "right"),
        ("conversions", "right"),
        ("rate", "right"),
        ("lift [95% CI]", "right"),
        ("p-value", "right"),
        ("revenue", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for result in results:
        for index, v in enumerate(result.variations):
            m = v.metric(metric)
            table.add_row(
                Text.assemble((result.flag_key, "bold"), " / ", result.rule_key or "(no rule)")
                if index == 0
                else Text(""),
                Text(v.variation_key or "(none)"),
                f"{v.visitors:,}",
                f"{m.conversions:,}" if m else "0",
                _pct(m.rate if m else 0.0),
                _lift(m),
                "—" if m is None or m.p_value is None else f"{m.p_value:.4f}",
                f"{m.revenue / 100:,.2f}" if m else "0.00",
                end_section=index == len(result.variations) - 1,
            )
    return table
