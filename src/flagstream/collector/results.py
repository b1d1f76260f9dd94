"""Experiment results from stored events: visitors, conversions, rates, lift and significance.

A visitor counts in every (experiment, variation) a decision put them in, from
the time of their first such decision. A conversion (any event other than the
impression's ``campaign_activated``) is attributed to each of the visitor's
variations decided at or before the conversion's timestamp. Per event key:

* conversions: unique converting visitors; revenue: sum of ``revenue`` over
  the attributed events (cents, as sent);
* rate: conversions / visitors;
* lift against the experiment's first variation (lowest variation id, which
  is the datafile order for Optimizely-made ids): ``(rate - base) / base``;
* its 95 % confidence interval: the unpooled normal interval of the rate
  difference, divided by the base rate;
* p-value: two-sided two-proportion z-test with the pooled rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flagstream.collector.storage import Store
from flagstream.events.payload import ACTIVATE_EVENT_KEY

__all__ = ["ExperimentResult", "MetricResult", "VariationResult", "compare", "compute_results", "to_json"]

Z_95 = 1.959963984540054  # two-sided 95 % normal quantile


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One event key in one variation."""

    key: str
    conversions: int
    events: int
    rate: float
    revenue: int
    lift: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None


@dataclass(frozen=True, slots=True)
class VariationResult:
    """One variation of one experiment or flag rule."""

    variation_id: str
    variation_key: str
    visitors: int
    metrics: tuple[MetricResult, ...]

    def metric(self, key: str) -> MetricResult | None:
        """The result for event ``key``, or None when no conversion of it was attributed."""
        return next((m for m in self.metrics if m.key == key), None)


@dataclass(frozen=True, slots=True)
class ExperimentResult:
    """One experiment or flag rule, its first variation first."""

    experiment_id: str
    flag_key: str
    rule_key: str
    rule_type: str
    event_keys: tuple[str, ...]
    variations: tuple[VariationResult, ...]

    @property
    def visitors(self) -> int:
        """Visitors across all variations."""
        return sum(v.visitors for v in self.variations)


def compare(
    base_visitors: int, base_conversions: int, visitors: int, conversions: int
) -> tuple[float | None, float | None, float | None, float | None]:
    """``(lift, ci_low, ci_high, p_value)`` of a variation against the base; None where undefined.

    >>> lift, low, high, p = compare(1000, 100, 1000, 130)
    >>> round(lift, 3), round(p, 4)
    (0.3, 0.0355)
    """
    if base_visitors <= 0 or visitors <= 0:
        return None, None, None, None
    p_base = base_conversions / base_visitors
    p_var = conversions / visitors
    diff = p_var - p_base
    pooled = (base_conversions + conversions) / (base_visitors + visitors)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / base_visitors + 1 / visitors))
    if se_pooled > 0:
        p_value: float | None = math.erfc(abs(diff / se_pooled) / math.sqrt(2))
    else:
        p_value = 1.0  # both rates 0 or both 1: no difference to test
    if p_base == 0:
        return None, None, None, p_value
    se = math.sqrt(p_base * (1 - p_base) / base_visitors + p_var * (1 - p_var) / visitors)
    return diff / p_base, (diff - Z_95 * se) / p_base, (diff + Z_95 * se) / p_base, p_value


# An experiment is identified by (experiment_id, flag_key): a flag decided without any rule
# sends an empty experiment id, and those must not be mixed across flags.
_FIRST_DECISIONS = """
    SELECT experiment_id, flag_key, COALESCE(variation_id, '') AS variation_id, visitor_id, MIN(timestamp) AS ts
    FROM decisions GROUP BY 1, 2, 3, 4
"""
_LABELS = """
    SELECT experiment_id, flag_key, COALESCE(variation_id, ''), MAX(rule_key), MAX(rule_type),
           MAX(variation_key), COUNT(DISTINCT visitor_id)
    FROM decisions GROUP BY 1, 2, 3
"""
# Built from module constants only; no value from a request is formatted into SQL.
_CONVERSIONS = f"""
    WITH first AS ({_FIRST_DECISIONS})
    SELECT f.experiment_id, f.flag_key, f.variation_id, e.key, COUNT(DISTINCT e.visitor_id), COUNT(*),
           COALESCE(SUM(e.revenue), 0)
    FROM first f JOIN events e ON e.visitor_id = f.visitor_id AND e.timestamp >= f.ts
    WHERE e.key != '{ACTIVATE_EVENT_KEY}'
    GROUP BY 1, 2, 3, 4
"""  # noqa: S608


def _id_order(variation_id: str) -> tuple[int, int, str]:
    return (0, int(variation_id), "") if variation_id.isdigit() else (1, 0, variation_id)


def compute_results(store: Store, experiment: str | None = None) -> list[ExperimentResult]:
    """Results of every experiment and flag rule seen in decisions (or only ``experiment``, id or rule key)."""
    conversions: dict[tuple[str, str, str], dict[str, tuple[int, int, int]]] = {}
    for exp_id, flag, var_id, key, converters, n_events, revenue in store.query(_CONVERSIONS):
        conversions.setdefault((exp_id, flag, var_id), {})[key] = (converters, n_events, revenue)
    by_experiment: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in store.query(_LABELS):
        by_experiment.setdefault((row[0], row[1]), []).append(row)
    results = []
    for (exp_id, flag_key), rows in sorted(by_experiment.items(), key=lambda item: (item[0][1], item[0][0])):
        rows.sort(key=lambda r: _id_order(r[2]))
        rule_key, rule_type = rows[0][3], rows[0][4]
        if experiment is not None and experiment not in (exp_id, rule_key):
            continue
        keys = sorted({k for r in rows for k in conversions.get((exp_id, flag_key, r[2]), {})})
        base_visitors = rows[0][6]
        base_conv = conversions.get((exp_id, flag_key, rows[0][2]), {})
        variations = []
        for index, (_, _, var_id, _, _, var_key, visitors) in enumerate(rows):
            conv = conversions.get((exp_id, flag_key, var_id), {})
            metrics = []
            for key in keys:
                converters, n_events, revenue = conv.get(key, (0, 0, 0))
                if index == 0:
                    lift = low = high = p_value = None
                else:
                    base = base_conv.get(key, (0, 0, 0))[0]
                    lift, low, high, p_value = compare(base_visitors, base, visitors, converters)
                rate = converters / visitors if visitors else 0.0
                metrics.append(
                    MetricResult(key, converters, n_events, rate, revenue, lift, low, high, p_value)
                )
            variations.append(VariationResult(var_id, var_key, visitors, tuple(metrics)))
        results.append(
            ExperimentResult(exp_id, flag_key, rule_key, rule_type, tuple(keys), tuple(variations))
        )
    return results


def to_json(results: list[ExperimentResult]) -> list[dict[str, Any]]:
    """Plain JSON-ready dicts of ``results`` (what ``GET /api/results`` returns)."""
    return [
        {
            "experiment_id": r.experiment_id,
            "flag_key": r.flag_key,
            "rule_key": r.rule_key,
            "rule_type": r.rule_type,
            "visitors": r.visitors,
            "event_keys": list(r.event_keys),
            "variations": [
                {
                    "variation_id": v.variation_id,
                    "variation_key": v.variation_key,
                    "visitors": v.visitors,
                    "metrics": {
                        m.key: {
                            "conversions": m.conversions,
                            "events": m.events,
                            "rate": m.rate,
                            "revenue": m.revenue,
                            "lift": m.lift,
                            "ci_low": m.ci_low,
                            "ci_high": m.ci_high,
                            "p_value": m.p_value,
                        }
                        for m in v.metrics
                    },
                }
                for v in r.variations
            ],
        }
        for r in results
    ]
